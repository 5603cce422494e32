// Spherical harmonics (degree 0..3) to RGB, forward and backward. CPU twin: sh.cpp. No CUDA
// twin: on a GPU gsplat evaluates SH.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "utils/dispatch.h"

namespace gsseg {

// coeffs [N,K,3], dirs [C,N,3] (unnormalised) -> rgb [C,N,3] = clamp_min(sum_b basis_b(dir) coeff_b + 0.5, 0).
at::Tensor sh_forward_cpu(int64_t degree, const at::Tensor& coeffs, const at::Tensor& dirs);

// Backward of sh_forward -> v_coeffs [N,K,3] (summed over cameras), v_dirs [C,N,3].
std::tuple<at::Tensor, at::Tensor> sh_backward_cpu(int64_t degree, const at::Tensor& coeffs, const at::Tensor& dirs,
                                                   const at::Tensor& v_rgb);

inline at::Tensor sh_forward(int64_t degree, const at::Tensor& coeffs, const at::Tensor& dirs) {
    GSSEG_CHECK_NOT_CUDA("sh_forward", coeffs);
    return sh_forward_cpu(degree, coeffs, dirs);
}

inline std::tuple<at::Tensor, at::Tensor> sh_backward(int64_t degree, const at::Tensor& coeffs,
                                                      const at::Tensor& dirs, const at::Tensor& v_rgb) {
    GSSEG_CHECK_NOT_CUDA("sh_backward", coeffs);
    return sh_backward_cpu(degree, coeffs, dirs, v_rgb);
}

}  // namespace gsseg
