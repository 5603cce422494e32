// Front-to-back compositing of K channels (RGB, or identity features on CPU), forward and
// analytic backward. CPU twin: rasterize.cpp. No CUDA twin: on a GPU gsplat rasterizes RGB and
// features/ renders the identity-feature channels.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "utils/dispatch.h"

namespace gsseg {

// colors [C,N,K] -> out [C,H,W,K], alpha [C,H,W,1], final transmittance [C,H,W] and n_done
// [C,H,W] int32 (list entries walked up to and including the last composited Gaussian), the
// last two for the backward.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_forward_cpu(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& colors,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size);

// Backward of rasterize_forward given v_out [C,H,W,K] and v_alpha [C,H,W,1] ->
// v_means2d [C,N,2], v_conics [C,N,3], v_opacities [N], v_colors [C,N,K].
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_backward_cpu(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& colors,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size, const at::Tensor& final_t, const at::Tensor& n_done, const at::Tensor& v_out,
    const at::Tensor& v_alpha);

inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_forward(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& colors,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size) {
    GSSEG_CHECK_NOT_CUDA("rasterize_forward", means2d);
    return rasterize_forward_cpu(means2d, conics, opacities, colors, tile_offsets, flatten_ids, width, height,
                                 tile_size);
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_backward(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& colors,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size, const at::Tensor& final_t, const at::Tensor& n_done, const at::Tensor& v_out,
    const at::Tensor& v_alpha) {
    GSSEG_CHECK_NOT_CUDA("rasterize_backward", means2d);
    return rasterize_backward_cpu(means2d, conics, opacities, colors, tile_offsets, flatten_ids, width, height,
                                  tile_size, final_t, n_done, v_out, v_alpha);
}

}  // namespace gsseg
