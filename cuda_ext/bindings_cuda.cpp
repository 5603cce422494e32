// Torch binding of gsseg's CUDA kernels (module gsseg_cuda_ext, built by
// gsseg.render.cuda_extension): the tensor-level CUDA twins declared in the op headers
// (features/features.h, contribution_table/contribution_table.h) check tensors, allocate
// outputs and launch.
//
// The kernels themselves (cuda_ext/<op>/*.cu) take raw pointers; this file is the only
// one that sees torch types. Layouts follow gsplat's unpacked projection (packed=False).
// ATen + torch's pybind casters instead of <torch/extension.h>: same API, a third of the
// compile time.

// This translation unit is the CUDA build: the op headers' dispatchers may call the _cuda twins.
#define GSSEG_WITH_CUDA 1

#include <ATen/ATen.h>
#include <torch/csrc/utils/pybind.h>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <tuple>
#include <vector>

#include "contribution_table/contribution_table.h"
#include "features/features.h"

namespace py = pybind11;

namespace gsseg {
namespace {

using at::Tensor;

void check_cuda_tensor(const Tensor &t, const char *name, at::ScalarType dtype, const Tensor &ref) {
    TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
    TORCH_CHECK(t.device() == ref.device(), name, " must be on the same device as means2d");
    TORCH_CHECK(t.scalar_type() == dtype, name, " must be ", c10::toString(dtype), ", got ",
                c10::toString(t.scalar_type()));
    TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

void check_status(int code, const char *what) {
    TORCH_CHECK(code == 0, "gsseg CUDA ", what, " failed: ", error_string(code));
}

// Validates the gsplat projection / intersection tensors and packs them into the raw structs.
std::pair<TileGrid, ProjectedGaussians>
make_grid(const Tensor &means2d, const Tensor &conics, const Tensor &opacities,
          const Tensor &isect_offsets, const Tensor &flatten_ids, int64_t width, int64_t height,
          int64_t tile_size) {
    TORCH_CHECK(means2d.dim() == 3 && means2d.size(2) == 2, "means2d must be [I,N,2], got ",
                means2d.sizes());
    const int64_t n_images = means2d.size(0);
    const int64_t n = means2d.size(1);
    check_cuda_tensor(means2d, "means2d", at::kFloat, means2d);
    check_cuda_tensor(conics, "conics", at::kFloat, means2d);
    check_cuda_tensor(opacities, "opacities", at::kFloat, means2d);
    check_cuda_tensor(isect_offsets, "isect_offsets", at::kInt, means2d);
    check_cuda_tensor(flatten_ids, "flatten_ids", at::kInt, means2d);
    TORCH_CHECK(conics.dim() == 3 && conics.size(0) == n_images && conics.size(1) == n &&
                    conics.size(2) == 3,
                "conics must be [I,N,3], got ", conics.sizes());
    TORCH_CHECK(opacities.dim() == 2 && opacities.size(0) == n_images && opacities.size(1) == n,
                "opacities must be [I,N], got ", opacities.sizes());
    TORCH_CHECK(width >= 0 && height >= 0, "image size must be non-negative");
    TORCH_CHECK(tile_size > 0 && tile_size * tile_size <= 256 && (tile_size * tile_size) % 32 == 0,
                "tile_size must be 8 or 16, got ", tile_size);
    const int64_t tile_w = (width + tile_size - 1) / tile_size;
    const int64_t tile_h = (height + tile_size - 1) / tile_size;
    TORCH_CHECK(isect_offsets.dim() == 3 && isect_offsets.size(0) == n_images &&
                    isect_offsets.size(1) == tile_h && isect_offsets.size(2) == tile_w,
                "isect_offsets must be [I,", tile_h, ",", tile_w, "], got ", isect_offsets.sizes());
    TORCH_CHECK(flatten_ids.dim() == 1, "flatten_ids must be 1-D");
    TORCH_CHECK(n_images * n < (int64_t(1) << 31) && flatten_ids.size(0) < (int64_t(1) << 31) &&
                    n_images * width * height < (int64_t(1) << 31),
                "problem too large for 32-bit indices");
    TORCH_CHECK(tile_w <= 65535 && tile_h <= 65535, "image too large for the tile grid");

    TileGrid grid;
    grid.n_images = static_cast<int32_t>(n_images);
    grid.n_gaussians = static_cast<int32_t>(n);
    grid.width = static_cast<int32_t>(width);
    grid.height = static_cast<int32_t>(height);
    grid.tile_size = static_cast<int32_t>(tile_size);
    grid.tile_width = static_cast<int32_t>(tile_w);
    grid.tile_height = static_cast<int32_t>(tile_h);
    grid.n_isects = static_cast<int32_t>(flatten_ids.size(0));
    grid.isect_offsets = isect_offsets.data_ptr<int32_t>();
    grid.flatten_ids = flatten_ids.data_ptr<int32_t>();

    ProjectedGaussians gauss;
    gauss.means2d = means2d.data_ptr<float>();
    gauss.conics = conics.data_ptr<float>();
    gauss.opacities = opacities.data_ptr<float>();
    return {grid, gauss};
}

void check_features(const Tensor &features, const Tensor &means2d) {
    check_cuda_tensor(features, "features", at::kFloat, means2d);
    TORCH_CHECK(features.dim() == 2 && features.size(0) == means2d.size(1),
                "features must be [N,D] with N = ", means2d.size(1), ", got ", features.sizes());
    TORCH_CHECK(features.size(1) >= 1 && features.size(1) <= 4096,
                "features must have 1..4096 channels, got ", features.size(1));
}

void *current_stream(const Tensor &t) {
    return static_cast<void *>(c10::cuda::getCurrentCUDAStream(t.device().index()).stream());
}

} // namespace

// Returns (features [I,H,W,D], transmittance [I,H,W], last_ids [I,H,W] int32).
std::tuple<Tensor, Tensor, Tensor>
feature_forward_cuda(const Tensor &means2d, const Tensor &conics, const Tensor &opacities,
                const Tensor &features, const Tensor &isect_offsets, const Tensor &flatten_ids,
                int64_t width, int64_t height, int64_t tile_size) {
    auto [grid, gauss] =
        make_grid(means2d, conics, opacities, isect_offsets, flatten_ids, width, height, tile_size);
    check_features(features, means2d);
    const c10::cuda::CUDAGuard guard(means2d.device());
    const int64_t d = features.size(1);
    auto fopts = means2d.options();
    Tensor out = at::zeros({grid.n_images, height, width, d}, fopts);
    Tensor transmittance = at::ones({grid.n_images, height, width}, fopts);
    Tensor last_ids = at::full({grid.n_images, height, width}, -1, fopts.dtype(at::kInt));
    check_status(launch_feature_forward(grid, gauss, features.data_ptr<float>(),
                                             static_cast<int32_t>(d), out.data_ptr<float>(),
                                             transmittance.data_ptr<float>(),
                                             last_ids.data_ptr<int32_t>(), current_stream(means2d)),
                 "feature forward");
    return {out, transmittance, last_ids};
}

// Returns (v_features [N,D], v_means2d [I,N,2], v_conics [I,N,3], v_opacities [I,N]); the
// geometry gradients are empty tensors when compute_geometry is false.
std::tuple<Tensor, Tensor, Tensor, Tensor>
feature_backward_cuda(const Tensor &means2d, const Tensor &conics, const Tensor &opacities,
                 const Tensor &features, const Tensor &isect_offsets, const Tensor &flatten_ids,
                 int64_t width, int64_t height, int64_t tile_size, const Tensor &transmittance,
                 const Tensor &last_ids, const Tensor &v_out, bool compute_geometry) {
    auto [grid, gauss] =
        make_grid(means2d, conics, opacities, isect_offsets, flatten_ids, width, height, tile_size);
    check_features(features, means2d);
    const int64_t d = features.size(1);
    check_cuda_tensor(transmittance, "transmittance", at::kFloat, means2d);
    check_cuda_tensor(last_ids, "last_ids", at::kInt, means2d);
    check_cuda_tensor(v_out, "v_features_out", at::kFloat, means2d);
    const std::vector<int64_t> pix_shape = {grid.n_images, height, width};
    TORCH_CHECK(transmittance.sizes() == c10::IntArrayRef(pix_shape), "transmittance must be [I,H,W]");
    TORCH_CHECK(last_ids.sizes() == c10::IntArrayRef(pix_shape), "last_ids must be [I,H,W]");
    TORCH_CHECK(v_out.dim() == 4 && v_out.size(0) == grid.n_images && v_out.size(1) == height &&
                    v_out.size(2) == width && v_out.size(3) == d,
                "grad of features must be [I,H,W,D], got ", v_out.sizes());
    const c10::cuda::CUDAGuard guard(means2d.device());
    Tensor v_features = at::zeros_like(features);
    Tensor v_means2d, v_conics, v_opacities;
    if (compute_geometry) {
        v_means2d = at::zeros_like(means2d);
        v_conics = at::zeros_like(conics);
        v_opacities = at::zeros_like(opacities);
    } else {
        v_means2d = at::empty({0}, means2d.options());
        v_conics = at::empty({0}, means2d.options());
        v_opacities = at::empty({0}, means2d.options());
    }
    check_status(launch_feature_backward(
                     grid, gauss, features.data_ptr<float>(), static_cast<int32_t>(d),
                     transmittance.data_ptr<float>(), last_ids.data_ptr<int32_t>(),
                     v_out.data_ptr<float>(), v_features.data_ptr<float>(),
                     compute_geometry ? v_means2d.data_ptr<float>() : nullptr,
                     compute_geometry ? v_conics.data_ptr<float>() : nullptr,
                     compute_geometry ? v_opacities.data_ptr<float>() : nullptr,
                     current_stream(means2d)),
                 "feature backward");
    return {v_features, v_means2d, v_conics, v_opacities};
}

// Returns the CSR contribution table of every pixel of every image:
// (offsets [I*H*W+1] int64, gaussian_ids [nnz] int32, weights [nnz] float32).
std::tuple<Tensor, Tensor, Tensor>
build_table_cuda(const Tensor &means2d, const Tensor &conics, const Tensor &opacities,
            const Tensor &isect_offsets, const Tensor &flatten_ids, int64_t width, int64_t height,
            int64_t tile_size) {
    auto [grid, gauss] =
        make_grid(means2d, conics, opacities, isect_offsets, flatten_ids, width, height, tile_size);
    const c10::cuda::CUDAGuard guard(means2d.device());
    const int64_t n_pix = static_cast<int64_t>(grid.n_images) * height * width;
    Tensor counts = at::zeros({n_pix}, means2d.options().dtype(at::kInt));
    void *stream = current_stream(means2d);
    check_status(launch_table_count(grid, gauss, counts.data_ptr<int32_t>(), stream),
                 "table count");
    Tensor offsets = at::zeros({n_pix + 1}, means2d.options().dtype(at::kLong));
    if (n_pix > 0) {
        offsets.narrow(0, 1, n_pix).copy_(at::cumsum(counts, 0, at::kLong));
    }
    const int64_t nnz = offsets[n_pix].item<int64_t>();
    Tensor ids = at::empty({nnz}, means2d.options().dtype(at::kInt));
    Tensor weights = at::empty({nnz}, means2d.options());
    if (nnz > 0) {
        check_status(launch_table_fill(grid, gauss, offsets.data_ptr<int64_t>(),
                                            ids.data_ptr<int32_t>(), weights.data_ptr<float>(),
                                            stream),
                     "table fill");
    }
    return {offsets, ids, weights};
}

} // namespace gsseg

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "gsseg CUDA kernels: identity-feature rasterization and contribution tables";
    m.def("feature_forward", &gsseg::feature_forward_cuda,
          "features [I,H,W,D], transmittance [I,H,W], last_ids [I,H,W] from gsplat tile data",
          py::arg("means2d"), py::arg("conics"), py::arg("opacities"), py::arg("features"),
          py::arg("isect_offsets"), py::arg("flatten_ids"), py::arg("width"), py::arg("height"),
          py::arg("tile_size"));
    m.def("feature_backward", &gsseg::feature_backward_cuda,
          "v_features [N,D], v_means2d [I,N,2], v_conics [I,N,3], v_opacities [I,N]",
          py::arg("means2d"), py::arg("conics"), py::arg("opacities"), py::arg("features"),
          py::arg("isect_offsets"), py::arg("flatten_ids"), py::arg("width"), py::arg("height"),
          py::arg("tile_size"), py::arg("transmittance"), py::arg("last_ids"), py::arg("v_out"),
          py::arg("compute_geometry"));
    m.def("build_table", &gsseg::build_table_cuda,
          "CSR contribution table: offsets [I*H*W+1] int64, gaussian_ids int32, weights float32",
          py::arg("means2d"), py::arg("conics"), py::arg("opacities"), py::arg("isect_offsets"),
          py::arg("flatten_ids"), py::arg("width"), py::arg("height"), py::arg("tile_size"));
}
