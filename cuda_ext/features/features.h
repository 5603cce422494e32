// Identity-feature rasterization on the GPU: D-channel front-to-back compositing from gsplat's
// tile data, forward and backward (features [N,D] and, optionally, the 2D geometry).
//
// CUDA twin: feature_forward.cu, feature_backward.cu (raw-pointer kernels), adapted to tensors
// by feature_forward_cuda / feature_backward_cuda in bindings_cuda.cpp. No CPU twin of this
// op: on CPU the features are composited by rasterize/ (rasterize_forward with colors =
// features) or read from a contribution table (table_features/).
//
// The .cu files and the host emulation of the tests (tests/csrc) see only the raw-pointer
// launchers; the tensor-level twins and the dispatcher need torch and are left out there.
#pragma once

#include <cstdint>

#include "utils/cuda_launch.h"

namespace gsseg {

// Forward: features [N, D] -> out_features [I, H, W, D] = sum_i T_i alpha_i f_i (no background),
// out_transmittance [I, H, W] = T after the last contributor,
// out_last_ids [I, H, W] = index into flatten_ids of the last contributor, -1 if none.
int launch_feature_forward(const TileGrid &grid, const ProjectedGaussians &gauss, const float *features,
                           int32_t n_channels, float *out_features, float *out_transmittance,
                           int32_t *out_last_ids, void *stream);

// Backward of launch_feature_forward. v_features [N, D] must be zeroed by the caller and is
// accumulated with atomics. v_means2d [I,N,2], v_conics [I,N,3], v_opacities [I,N] are
// either all null (features-only gradient) or all zeroed buffers.
int launch_feature_backward(const TileGrid &grid, const ProjectedGaussians &gauss, const float *features,
                            int32_t n_channels, const float *transmittance, const int32_t *last_ids,
                            const float *v_out_features, float *v_features, float *v_means2d, float *v_conics,
                            float *v_opacities, void *stream);

}  // namespace gsseg

#if !defined(__CUDACC__) && !defined(GSSEG_HOST_EMULATION)
#include <ATen/ATen.h>

#include <tuple>

namespace gsseg {

// (features [I,H,W,D], transmittance [I,H,W], last_ids [I,H,W] int32) from CUDA float32 tensors.
std::tuple<at::Tensor, at::Tensor, at::Tensor> feature_forward_cuda(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& features,
    const at::Tensor& isect_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size);

// (v_features [N,D], v_means2d [I,N,2], v_conics [I,N,3], v_opacities [I,N]); the geometry
// gradients are empty tensors when compute_geometry is false.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> feature_backward_cuda(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& features,
    const at::Tensor& isect_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size, const at::Tensor& transmittance, const at::Tensor& last_ids, const at::Tensor& v_out,
    bool compute_geometry);

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> feature_forward(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& features,
    const at::Tensor& isect_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size) {
#ifdef GSSEG_WITH_CUDA
    if (means2d.is_cuda())
        return feature_forward_cuda(means2d, conics, opacities, features, isect_offsets, flatten_ids, width, height,
                                    tile_size);
#endif
    TORCH_CHECK(false, "feature_forward: no CPU twin (on CPU use rasterize_forward with colors = features), "
                       "and CUDA tensors need a build with GSSEG_WITH_CUDA");
    return {};
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> feature_backward(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& features,
    const at::Tensor& isect_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size, const at::Tensor& transmittance, const at::Tensor& last_ids, const at::Tensor& v_out,
    bool compute_geometry) {
#ifdef GSSEG_WITH_CUDA
    if (means2d.is_cuda())
        return feature_backward_cuda(means2d, conics, opacities, features, isect_offsets, flatten_ids, width,
                                     height, tile_size, transmittance, last_ids, v_out, compute_geometry);
#endif
    TORCH_CHECK(false, "feature_backward: no CPU twin (on CPU use rasterize_backward), "
                       "and CUDA tensors need a build with GSSEG_WITH_CUDA");
    return {};
}

}  // namespace gsseg
#endif
