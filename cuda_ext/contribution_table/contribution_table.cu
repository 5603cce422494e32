// Per-pixel contribution tables (CSR): for every pixel, the Gaussians composited into it,
// front to back, with their weights T_i * alpha_i, truncated where transmittance would fall
// to 1e-4 (the same rule as the renderer, so table features equal rendered features).
//
// Two passes over gsplat's tile intersections: count contributors per pixel, then (after the
// caller's prefix sum) write ids and weights at each pixel's offset.
#include <cstdint>

#include "utils/composite.cuh"
#include "contribution_table/contribution_table.h"
#include "utils/tile_common.cuh"

namespace gsseg {

__global__ void __launch_bounds__(256)
table_count_kernel(const TileGrid grid, const ProjectedGaussians gauss,
                   int32_t *__restrict__ counts) { // [I, H, W]
    GSSEG_DYNAMIC_SHARED(smem);
    const int32_t image = static_cast<int32_t>(blockIdx.z);
    const TilePixel p = tile_pixel(grid, image);
    int32_t n = 0;
    composite_front_to_back(grid, gauss, p, smem,
                            [&](int32_t, int32_t, float) { ++n; });
    if (p.inside) {
        counts[static_cast<int64_t>(image) * grid.width * grid.height + p.pix] = n;
    }
}

__global__ void __launch_bounds__(256)
table_fill_kernel(const TileGrid grid, const ProjectedGaussians gauss,
                  const int64_t *__restrict__ offsets, // [I*H*W + 1]
                  int32_t *__restrict__ gaussian_ids,  // [nnz]
                  float *__restrict__ weights) {       // [nnz]
    GSSEG_DYNAMIC_SHARED(smem);
    const int32_t image = static_cast<int32_t>(blockIdx.z);
    const TilePixel p = tile_pixel(grid, image);
    const int64_t gauss_base = static_cast<int64_t>(image) * grid.n_gaussians;
    int64_t pos = p.inside ? offsets[static_cast<int64_t>(image) * grid.width * grid.height + p.pix] : 0;
    composite_front_to_back(grid, gauss, p, smem, [&](int32_t, int32_t flat_id, float weight) {
        gaussian_ids[pos] = static_cast<int32_t>(flat_id - gauss_base);
        weights[pos] = weight;
        ++pos;
    });
}

// Validation and launch shape shared by the count and fill passes: one block per tile and image.
struct TableLaunch {
    int status;  // CUDA error code, 0 when the launch may go ahead
    bool skip;   // empty grid: nothing to launch
    dim3 blocks, threads;
    size_t shmem;
};

static TableLaunch plan_table_launch(const TileGrid &grid) {
    TableLaunch l{check_grid(grid), false, dim3(1, 1, 1), dim3(1, 1, 1), 0};
    if (l.status != 0) {
        return l;
    }
    l.skip = grid_is_empty(grid);
    if (!l.skip && grid.n_images > 65535) {
        l.status = static_cast<int>(cudaErrorInvalidConfiguration);
    }
    l.blocks = dim3(grid.tile_width, grid.tile_height, grid.n_images);
    l.threads = dim3(grid.tile_size, grid.tile_size, 1);
    l.shmem = GaussianBatch::bytes(grid.tile_size * grid.tile_size);
    return l;
}

int launch_table_count(const TileGrid &grid, const ProjectedGaussians &gauss, int32_t *counts,
                       void *stream_ptr) {
    const TableLaunch l = plan_table_launch(grid);
    if (l.status != 0 || l.skip) {
        return l.status;
    }
    GSSEG_LAUNCH(l.blocks, l.threads, l.shmem, static_cast<cudaStream_t>(stream_ptr), table_count_kernel)(
        grid, gauss, counts);
    return last_launch_error();
}

int launch_table_fill(const TileGrid &grid, const ProjectedGaussians &gauss, const int64_t *offsets,
                      int32_t *gaussian_ids, float *weights, void *stream_ptr) {
    const TableLaunch l = plan_table_launch(grid);
    if (l.status != 0 || l.skip) {
        return l.status;
    }
    GSSEG_LAUNCH(l.blocks, l.threads, l.shmem, static_cast<cudaStream_t>(stream_ptr), table_fill_kernel)(
        grid, gauss, offsets, gaussian_ids, weights);
    return last_launch_error();
}

} // namespace gsseg
