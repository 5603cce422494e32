// Per-pixel contribution table (CSR): for every pixel, the Gaussians that composite into it
// front to back and their weights T_i * alpha_i (stop at transmittance < 1e-4), the
// frozen-geometry fast path of DESIGN.md.
//
// CPU twin: contribution_table.cpp (camera 0 of gsseg's own tile binning).
// CUDA twin: contribution_table.cu (raw-pointer kernels, every image of gsplat's tile
// intersection), adapted to tensors by build_table_cuda in bindings_cuda.cpp.
//
// The .cu files and the host emulation of the tests (tests/csrc) see only the raw-pointer
// launchers; the tensor-level twins and the dispatcher need torch and are left out there.
#pragma once

#include <cstdint>

#include "utils/cuda_launch.h"

namespace gsseg {

// CUDA, pass 1: counts [I*H*W] = number of contributors per pixel.
int launch_table_count(const TileGrid &grid, const ProjectedGaussians &gauss, int32_t *counts, void *stream);

// CUDA, pass 2: offsets [I*H*W + 1] is the exclusive prefix sum of counts; writes gaussian_ids
// [nnz] (Gaussian index in [0, N)) and weights [nnz] (T_i * alpha_i) front to back for every pixel.
int launch_table_fill(const TileGrid &grid, const ProjectedGaussians &gauss, const int64_t *offsets,
                      int32_t *gaussian_ids, float *weights, void *stream);

}  // namespace gsseg

#if !defined(__CUDACC__) && !defined(GSSEG_HOST_EMULATION)
#include <ATen/ATen.h>

#include <tuple>

#include "utils/dispatch.h"

namespace gsseg {

// CPU: contribution table of camera 0 from contiguous CPU tensors (float32 or float64) of
// gsseg's tile binning (tile_offsets [C*tiles+1] int64): offsets [H*W+1] int64,
// gaussian_ids [nnz] int32, weights [nnz] float32.
std::tuple<at::Tensor, at::Tensor, at::Tensor> build_table_cpu(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size);

// CUDA: the table of every pixel of every image from gsplat's unpacked projection (float32)
// and tile intersection (isect_offsets [I,tiles_y,tiles_x] int32): offsets [I*H*W+1] int64,
// gaussian_ids [nnz] int32, weights [nnz] float32.
std::tuple<at::Tensor, at::Tensor, at::Tensor> build_table_cuda(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
    const at::Tensor& isect_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size);

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> build_table(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size) {
    if (means2d.is_cuda()) {
#ifdef GSSEG_WITH_CUDA
        return build_table_cuda(means2d, conics, opacities, tile_offsets, flatten_ids, width, height, tile_size);
#else
        GSSEG_CHECK_NOT_CUDA("build_table", means2d);
#endif
    }
    return build_table_cpu(means2d, conics, opacities, tile_offsets, flatten_ids, width, height, tile_size);
}

}  // namespace gsseg
#endif
