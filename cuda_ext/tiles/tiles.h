// Tile binning with per-tile depth order. CPU twin: tiles.cpp. No CUDA twin: on a GPU gsplat
// intersects tiles.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "utils/dispatch.h"

namespace gsseg {

// Per camera and 16x16 tile, the visible Gaussians touching it sorted front to back (depth,
// then index). Returns tile_offsets [C*tiles_y*tiles_x + 1] int64 and flatten_ids [n_isect]
// int32 (Gaussian index within its camera).
std::tuple<at::Tensor, at::Tensor> isect_tiles_cpu(const at::Tensor& means2d, const at::Tensor& radii,
                                                   const at::Tensor& depths, int64_t width, int64_t height,
                                                   int64_t tile_size);

inline std::tuple<at::Tensor, at::Tensor> isect_tiles(const at::Tensor& means2d, const at::Tensor& radii,
                                                      const at::Tensor& depths, int64_t width, int64_t height,
                                                      int64_t tile_size) {
    GSSEG_CHECK_NOT_CUDA("isect_tiles", means2d);
    return isect_tiles_cpu(means2d, radii, depths, width, height, tile_size);
}

}  // namespace gsseg
