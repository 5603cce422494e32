// Backward of feature_forward: walks each tile's intersections back to front from the last
// composited Gaussian (as gsplat), recovering T_i = T_{i+1} / (1 - alpha_i).
//
// Per Gaussian and pixel: d f_i = T_i alpha_i v_out; d alpha_i from pixel_math.h's
// composite_v_alpha_channel, then alpha_backward for d opacity / d conic / d mean2d. A warp
// sums its 32 pixels' contributions with a shuffle reduce-scatter (CHUNK - 1 + 5 - log2 CHUNK
// shuffles rather than 5 per value) that leaves each total in its own lane, so the gradient
// of a Gaussian is one coalesced atomicAdd instruction per warp.
// Channel passes split d alpha linearly, so their geometry gradients add up exactly.
#include <cstdint>

#include "utils/pixel_math.h"
#include "features/features.h"
#include "utils/tile_common.cuh"

namespace gsseg {

template <int CHUNK, bool GEOMETRY>
__global__ void __launch_bounds__(256)
feature_backward_kernel(const TileGrid grid, const ProjectedGaussians gauss,
                        const float *__restrict__ features,    // [N, D]
                        const int32_t n_channels, const int32_t pass_width, const int32_t passes,
                        const float *__restrict__ trans_final, // [I, H, W]
                        const int32_t *__restrict__ last_ids,  // [I, H, W]
                        const float *__restrict__ v_out,       // [I, H, W, D]
                        float *__restrict__ v_features,        // [N, D]
                        float *__restrict__ v_means2d,         // [I, N, 2]
                        float *__restrict__ v_conics,          // [I, N, 3]
                        float *__restrict__ v_opacities) {     // [I, N]
    GSSEG_DYNAMIC_SHARED(smem);
    __shared__ int32_t s_last_max;

    const int32_t image = static_cast<int32_t>(blockIdx.z) / passes;
    const int32_t pass = static_cast<int32_t>(blockIdx.z) - image * passes;
    const int32_t c0 = pass * pass_width;
    const int32_t cw = min(pass_width, n_channels - c0);
    const TilePixel p = tile_pixel(grid, image);
    const int64_t gauss_base = static_cast<int64_t>(image) * grid.n_gaussians;
    const int32_t bs = block_size();
    const int32_t tr = block_thread_rank();
    const int32_t lane = tr & 31;

    GaussianBatch batch;
    float *feat_batch = reinterpret_cast<float *>(batch.carve(smem, bs)); // [bs, CHUNK]

    const int64_t pix = static_cast<int64_t>(image) * grid.width * grid.height + p.pix;
    float trans = p.inside ? trans_final[pix] : 1.0f;
    const int32_t last = p.inside ? last_ids[pix] : -1;
    float v_pix[CHUNK];
    float buffer[CHUNK];
#pragma unroll
    for (int k = 0; k < CHUNK; ++k) {
        v_pix[k] = (p.inside && k < cw) ? v_out[pix * n_channels + c0 + k] : 0.0f;
        buffer[k] = 0.0f;
    }

    // Nothing behind the block's deepest last contributor needs visiting.
    if (tr == 0) {
        s_last_max = -1;
    }
    __syncthreads();
    const int32_t warp_last = warp_max(last);
    if (lane == 0 && warp_last >= 0) {
        atomicMax(&s_last_max, warp_last);
    }
    __syncthreads();
    const int32_t range_end = min(p.end, s_last_max + 1);

    const float px = static_cast<float>(p.x) + 0.5f;
    const float py = static_cast<float>(p.y) + 0.5f;

    for (int32_t batch_end = range_end; batch_end > p.start; batch_end -= bs) {
        __syncthreads(); // the previous batch is fully consumed
        const int32_t count = min(bs, batch_end - p.start);
        // Slot 0 holds the furthest-back Gaussian of the batch (intersection batch_end - 1).
        if (tr < count) {
            const int32_t flat_id = grid.flatten_ids[batch_end - 1 - tr];
            batch.load(tr, flat_id, gauss);
            const float *f = features + (flat_id - gauss_base) * n_channels + c0;
#pragma unroll
            for (int k = 0; k < CHUNK; ++k) {
                feat_batch[tr * CHUNK + k] = k < cw ? f[k] : 0.0f;
            }
        }
        __syncthreads();

        // Slots whose intersection lies behind every lane's last contributor are skipped.
        const int32_t t_first = max(0, batch_end - 1 - warp_last);
        for (int32_t t = t_first; t < count; ++t) {
            const int32_t isect = batch_end - 1 - t;
            bool valid = p.inside && isect <= last;
            float alpha = 0.0f, vis = 0.0f, dx = 0.0f, dy = 0.0f;
            const float4 co = batch.conic_op[t];
            if (valid) {
                const float2 m = batch.means2d[t];
                dx = m.x - px;
                dy = m.y - py;
                const float sigma = gsseg::gaussian_sigma(co.x, co.y, co.z, dx, dy);
                valid = gsseg::gaussian_alpha(co.w, sigma, &alpha, &vis);
            }
            if (!__any_sync(kFullWarp, valid)) {
                continue;
            }

            float v_feat[CHUNK];
            float v_opacity = 0.0f;
            float v_conic[3] = {0.0f, 0.0f, 0.0f};
            float v_mean2d[2] = {0.0f, 0.0f};
            if (valid) {
                float trans_before, ra;
                gsseg::transmittance_unstep(trans, alpha, &trans_before, &ra);
                trans = trans_before;
                const float weight = alpha * trans;
                float v_alpha = 0.0f;
#pragma unroll
                for (int k = 0; k < CHUNK; ++k) {
                    const float f = feat_batch[t * CHUNK + k];
                    v_feat[k] = weight * v_pix[k];
                    v_alpha += gsseg::composite_v_alpha_channel(f, v_pix[k], buffer[k], trans, ra);
                    buffer[k] += f * weight;
                }
                if (GEOMETRY) {
                    gsseg::alpha_backward(co.w, co.x, co.y, co.z, dx, dy, vis, v_alpha, &v_opacity,
                                          v_conic, v_mean2d);
                }
            } else {
#pragma unroll
                for (int k = 0; k < CHUNK; ++k) {
                    v_feat[k] = 0.0f;
                }
            }

            // Warp totals, scattered over the lanes: one atomic per value and warp.
            const int32_t flat_id = batch.ids[t];
            constexpr int kLanesPerChannel = 32 / CHUNK;
            const float feat_total = warp_reduce_scatter(v_feat, lane);
            const int32_t channel = lane / kLanesPerChannel;
            if (lane % kLanesPerChannel == 0 && channel < cw) {
                atomicAdd(v_features + (flat_id - gauss_base) * n_channels + c0 + channel, feat_total);
            }
            if (GEOMETRY) {
                float geo[8] = {v_opacity, v_conic[0], v_conic[1], v_conic[2], v_mean2d[0], v_mean2d[1], 0.0f, 0.0f};
                const float geo_total = warp_reduce_scatter(geo, lane);
                if (lane % 4 == 0) {
                    const int64_t g = flat_id;
                    switch (lane / 4) {
                    case 0: atomicAdd(v_opacities + g, geo_total); break;
                    case 1: atomicAdd(v_conics + 3 * g, geo_total); break;
                    case 2: atomicAdd(v_conics + 3 * g + 1, geo_total); break;
                    case 3: atomicAdd(v_conics + 3 * g + 2, geo_total); break;
                    case 4: atomicAdd(v_means2d + 2 * g, geo_total); break;
                    case 5: atomicAdd(v_means2d + 2 * g + 1, geo_total); break;
                    default: break;
                    }
                }
            }
        }
    }
}

template <int CHUNK>
static int launch_backward(const TileGrid &grid, const ProjectedGaussians &gauss,
                           const float *features, int32_t n_channels, const ChannelPlan &plan,
                           const float *trans, const int32_t *last_ids, const float *v_out,
                           float *v_features, float *v_means2d, float *v_conics,
                           float *v_opacities, cudaStream_t stream) {
    const dim3 blocks(grid.tile_width, grid.tile_height, grid.n_images * plan.passes);
    const dim3 threads(grid.tile_size, grid.tile_size, 1);
    const int32_t bs = grid.tile_size * grid.tile_size;
    const size_t shmem = GaussianBatch::bytes(bs) + static_cast<size_t>(bs) * CHUNK * sizeof(float);
    if (v_means2d != nullptr) {
        GSSEG_LAUNCH(blocks, threads, shmem, stream, feature_backward_kernel<CHUNK, true>)(
            grid, gauss, features, n_channels, plan.width, plan.passes, trans, last_ids, v_out,
            v_features, v_means2d, v_conics, v_opacities);
    } else {
        GSSEG_LAUNCH(blocks, threads, shmem, stream, feature_backward_kernel<CHUNK, false>)(
            grid, gauss, features, n_channels, plan.width, plan.passes, trans, last_ids, v_out,
            v_features, nullptr, nullptr, nullptr);
    }
    return last_launch_error();
}

int launch_feature_backward(const TileGrid &grid, const ProjectedGaussians &gauss, const float *features,
                            int32_t n_channels, const float *transmittance, const int32_t *last_ids,
                            const float *v_out_features, float *v_features, float *v_means2d,
                            float *v_conics, float *v_opacities, void *stream_ptr) {
    if (const int err = check_grid(grid)) {
        return err;
    }
    const bool geometry = v_means2d != nullptr;
    if (n_channels < 1 || geometry != (v_conics != nullptr) || geometry != (v_opacities != nullptr)) {
        return static_cast<int>(cudaErrorInvalidValue);
    }
    if (grid_is_empty(grid)) {
        return 0;
    }
    const ChannelPlan plan = plan_channels(n_channels);
    if (static_cast<int64_t>(grid.n_images) * plan.passes > 65535) {
        return static_cast<int>(cudaErrorInvalidConfiguration);
    }
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    switch (plan.chunk) {
    case 1:
        return launch_backward<1>(grid, gauss, features, n_channels, plan, transmittance, last_ids,
                                  v_out_features, v_features, v_means2d, v_conics, v_opacities,
                                  stream);
    case 4:
        return launch_backward<4>(grid, gauss, features, n_channels, plan, transmittance, last_ids,
                                  v_out_features, v_features, v_means2d, v_conics, v_opacities,
                                  stream);
    case 8:
        return launch_backward<8>(grid, gauss, features, n_channels, plan, transmittance, last_ids,
                                  v_out_features, v_features, v_means2d, v_conics, v_opacities,
                                  stream);
    case 16:
        return launch_backward<16>(grid, gauss, features, n_channels, plan, transmittance,
                                   last_ids, v_out_features, v_features, v_means2d, v_conics,
                                   v_opacities, stream);
    default:
        return launch_backward<32>(grid, gauss, features, n_channels, plan, transmittance,
                                   last_ids, v_out_features, v_features, v_means2d, v_conics,
                                   v_opacities, stream);
    }
}

} // namespace gsseg
