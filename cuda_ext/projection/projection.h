// EWA projection of 3D Gaussians to the screen (gsplat 1.5 conventions, utils/pixel_math.h).
// CPU twin: projection.cpp. No CUDA twin: on a GPU gsplat projects.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "utils/dispatch.h"

namespace gsseg {

// means [N,3], quats [N,4], scales [N,3], opacities [N], viewmats [C,4,4], Ks [C,3,3] ->
// means2d [C,N,2], conics [C,N,3], depths [C,N], radii [C,N,2] int32 (0 = culled).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> project_forward_cpu(
    const at::Tensor& means, const at::Tensor& quats, const at::Tensor& scales, const at::Tensor& opacities,
    const at::Tensor& viewmats, const at::Tensor& Ks, int64_t width, int64_t height, double eps2d,
    double near_plane, double far_plane);

// Gradients of project_forward for visible Gaussians -> v_means [N,3], v_quats [N,4], v_scales [N,3].
std::tuple<at::Tensor, at::Tensor, at::Tensor> project_backward_cpu(
    const at::Tensor& means, const at::Tensor& quats, const at::Tensor& scales, const at::Tensor& viewmats,
    const at::Tensor& Ks, int64_t width, int64_t height, const at::Tensor& radii, const at::Tensor& conics,
    const at::Tensor& v_means2d, const at::Tensor& v_conics, const at::Tensor& v_depths);

inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> project_forward(
    const at::Tensor& means, const at::Tensor& quats, const at::Tensor& scales, const at::Tensor& opacities,
    const at::Tensor& viewmats, const at::Tensor& Ks, int64_t width, int64_t height, double eps2d,
    double near_plane, double far_plane) {
    GSSEG_CHECK_NOT_CUDA("project_forward", means);
    return project_forward_cpu(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane,
                               far_plane);
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> project_backward(
    const at::Tensor& means, const at::Tensor& quats, const at::Tensor& scales, const at::Tensor& viewmats,
    const at::Tensor& Ks, int64_t width, int64_t height, const at::Tensor& radii, const at::Tensor& conics,
    const at::Tensor& v_means2d, const at::Tensor& v_conics, const at::Tensor& v_depths) {
    GSSEG_CHECK_NOT_CUDA("project_backward", means);
    return project_backward_cpu(means, quats, scales, viewmats, Ks, width, height, radii, conics, v_means2d,
                                v_conics, v_depths);
}

}  // namespace gsseg
