// EWA projection of 3D Gaussians (forward and backward), CPU + OpenMP.
#include "utils/cpu.h"
#include "utils/pixel_math.h"
#include "projection/projection.h"

namespace gsseg {

namespace {

template <typename T>
void project_forward_impl(const T* means, const T* quats, const T* scales, const T* opacities, const T* viewmats,
                          const T* Ks, int64_t C, int64_t N, int width, int height, T eps2d, T near_plane,
                          T far_plane, T* means2d, T* conics, T* depths, int32_t* radii) {
#pragma omp parallel for schedule(static) num_threads(num_threads())
    for (int64_t idx = 0; idx < C * N; ++idx) {
        const int64_t c = idx / N, g = idx % N;
        const T* K = Ks + c * 9;
        int r[2] = {0, 0};
        T m2[2] = {T(0), T(0)}, con[3] = {T(0), T(0), T(0)}, depth = T(0);
        const bool ok = gsseg::project_gaussian(means + g * 3, quats + g * 4, scales + g * 3, opacities[g],
                                                viewmats + c * 16, K[0], K[4], K[2], K[5], width, height, eps2d,
                                                near_plane, far_plane, m2, con, &depth, r);
        means2d[idx * 2] = m2[0];
        means2d[idx * 2 + 1] = m2[1];
        for (int i = 0; i < 3; ++i) conics[idx * 3 + i] = con[i];
        depths[idx] = ok ? depth : T(0);
        radii[idx * 2] = ok ? r[0] : 0;
        radii[idx * 2 + 1] = ok ? r[1] : 0;
    }
}

template <typename T>
void project_backward_impl(const T* means, const T* quats, const T* scales, const T* viewmats, const T* Ks,
                           int64_t C, int64_t N, int width, int height, const int32_t* radii, const T* conics,
                           const T* v_means2d, const T* v_conics, const T* v_depths, T* v_means, T* v_quats,
                           T* v_scales) {
#pragma omp parallel for schedule(static) num_threads(num_threads())
    for (int64_t g = 0; g < N; ++g) {
        for (int64_t c = 0; c < C; ++c) {
            const int64_t idx = c * N + g;
            if (radii[idx * 2] <= 0 || radii[idx * 2 + 1] <= 0) continue;
            const T* K = Ks + c * 9;
            gsseg::project_gaussian_backward(means + g * 3, quats + g * 4, scales + g * 3, viewmats + c * 16, K[0],
                                             K[4], K[2], K[5], width, height, conics + idx * 3,
                                             v_means2d + idx * 2, v_conics + idx * 3, v_depths[idx],
                                             v_means + g * 3, v_quats + g * 4, v_scales + g * 3);
        }
    }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> project_forward_cpu(
    const at::Tensor& means, const at::Tensor& quats, const at::Tensor& scales, const at::Tensor& opacities,
    const at::Tensor& viewmats, const at::Tensor& Ks, int64_t width, int64_t height, double eps2d,
    double near_plane, double far_plane) {
    GSSEG_CHECK_CPU(means); GSSEG_CHECK_CPU(quats); GSSEG_CHECK_CPU(scales); GSSEG_CHECK_CPU(opacities);
    GSSEG_CHECK_CPU(viewmats); GSSEG_CHECK_CPU(Ks);
    const int64_t N = means.size(0), C = viewmats.size(0);
    auto means2d = at::empty({C, N, 2}, means.options());
    auto conics = at::empty({C, N, 3}, means.options());
    auto depths = at::empty({C, N}, means.options());
    auto radii = at::empty({C, N, 2}, means.options().dtype(at::kInt));
    AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "project_forward", [&] {
        project_forward_impl<scalar_t>(means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(),
                                       scales.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
                                       viewmats.data_ptr<scalar_t>(), Ks.data_ptr<scalar_t>(), C, N, (int)width,
                                       (int)height, (scalar_t)eps2d, (scalar_t)near_plane, (scalar_t)far_plane,
                                       means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(),
                                       depths.data_ptr<scalar_t>(), radii.data_ptr<int32_t>());
    });
    return {means2d, conics, depths, radii};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> project_backward_cpu(
    const at::Tensor& means, const at::Tensor& quats, const at::Tensor& scales, const at::Tensor& viewmats,
    const at::Tensor& Ks, int64_t width, int64_t height, const at::Tensor& radii, const at::Tensor& conics,
    const at::Tensor& v_means2d, const at::Tensor& v_conics, const at::Tensor& v_depths) {
    GSSEG_CHECK_CPU(means); GSSEG_CHECK_CPU(radii); GSSEG_CHECK_CPU(conics);
    GSSEG_CHECK_CPU(v_means2d); GSSEG_CHECK_CPU(v_conics); GSSEG_CHECK_CPU(v_depths);
    const int64_t N = means.size(0), C = viewmats.size(0);
    auto v_means = at::zeros_like(means);
    auto v_quats = at::zeros_like(quats);
    auto v_scales = at::zeros_like(scales);
    AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "project_backward", [&] {
        project_backward_impl<scalar_t>(
            means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(), scales.data_ptr<scalar_t>(),
            viewmats.data_ptr<scalar_t>(), Ks.data_ptr<scalar_t>(), C, N, (int)width, (int)height,
            radii.data_ptr<int32_t>(), conics.data_ptr<scalar_t>(), v_means2d.data_ptr<scalar_t>(),
            v_conics.data_ptr<scalar_t>(), v_depths.data_ptr<scalar_t>(), v_means.data_ptr<scalar_t>(),
            v_quats.data_ptr<scalar_t>(), v_scales.data_ptr<scalar_t>());
    });
    return {v_means, v_quats, v_scales};
}

}  // namespace gsseg
