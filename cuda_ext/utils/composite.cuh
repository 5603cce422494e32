// Front-to-back compositing of one tile's depth-sorted Gaussians, shared by the feature
// forward kernel and the contribution-table kernels. All per-pixel math comes from
// utils/pixel_math.h so the CPU and CUDA kernels agree bit for bit in their rules.
#pragma once

#include <cstdint>

#include "utils/pixel_math.h"
#include "utils/tile_common.cuh"

namespace gsseg {

// Walks the tile's intersections [p.start, p.end) front to back in shared-memory batches of
// blockDim.x * blockDim.y Gaussians and calls visit(isect_index, flat_id, weight) for every
// Gaussian composited into this thread's pixel (weight = T_i * alpha_i), in order.
// Returns the transmittance after the last composited Gaussian. Every thread of the block
// must call it (it synchronises); `smem` holds GaussianBatch::bytes(block_size()) bytes.
template <typename Visit>
__device__ inline float composite_front_to_back(const TileGrid &grid, const ProjectedGaussians &gauss,
                                                const TilePixel &p, unsigned char *smem,
                                                Visit &&visit) {
    const int32_t bs = block_size();
    const int32_t tr = block_thread_rank();
    GaussianBatch batch;
    batch.carve(smem, bs);

    const float px = static_cast<float>(p.x) + 0.5f;
    const float py = static_cast<float>(p.y) + 0.5f;
    float trans = 1.0f;
    bool done = !p.inside;

    for (int32_t batch_start = p.start; batch_start < p.end; batch_start += bs) {
        // Also the barrier that protects the previous batch from being overwritten.
        if (__syncthreads_count(done) == bs) {
            break;
        }
        const int32_t idx = batch_start + tr;
        if (idx < p.end) {
            batch.load(tr, grid.flatten_ids[idx], gauss);
        }
        __syncthreads();
        const int32_t count = min(bs, p.end - batch_start);
        for (int32_t t = 0; t < count && !done; ++t) {
            const float4 co = batch.conic_op[t];
            const float2 m = batch.means2d[t];
            const float dx = m.x - px;
            const float dy = m.y - py;
            const float sigma = gsseg::gaussian_sigma(co.x, co.y, co.z, dx, dy);
            float alpha, vis;
            if (!gsseg::gaussian_alpha(co.w, sigma, &alpha, &vis)) {
                continue;
            }
            float next_trans, weight;
            if (!gsseg::transmittance_step(trans, alpha, &next_trans, &weight)) {
                done = true;
                break;
            }
            visit(batch_start + t, batch.ids[t], weight);
            trans = next_trans;
        }
    }
    return trans;
}

} // namespace gsseg
