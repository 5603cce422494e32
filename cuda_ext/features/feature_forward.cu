// Forward rasterization of per-Gaussian identity features over gsplat's tile intersections.
//
// One block per (tile, image, channel pass); blockIdx.z = image * passes + pass. Every pass
// recomputes the same alphas and transmittances and composites its own channel chunk, so
// any D is handled with a register array of at most kMaxChunk floats per pixel.
#include <cstdint>

#include "utils/composite.cuh"
#include "features/features.h"
#include "utils/tile_common.cuh"

namespace gsseg {

template <int CHUNK>
__global__ void __launch_bounds__(256)
feature_forward_kernel(const TileGrid grid, const ProjectedGaussians gauss,
                       const float *__restrict__ features, // [N, D]
                       const int32_t n_channels, const int32_t pass_width, const int32_t passes,
                       float *__restrict__ out_features,   // [I, H, W, D]
                       float *__restrict__ out_trans,      // [I, H, W]
                       int32_t *__restrict__ out_last) {   // [I, H, W]
    GSSEG_DYNAMIC_SHARED(smem);
    const int32_t image = static_cast<int32_t>(blockIdx.z) / passes;
    const int32_t pass = static_cast<int32_t>(blockIdx.z) - image * passes;
    const int32_t c0 = pass * pass_width;
    const int32_t cw = min(pass_width, n_channels - c0);
    const TilePixel p = tile_pixel(grid, image);
    const int64_t gauss_base = static_cast<int64_t>(image) * grid.n_gaussians;

    float acc[CHUNK];
#pragma unroll
    for (int k = 0; k < CHUNK; ++k) {
        acc[k] = 0.0f;
    }
    int32_t last = -1;
    const float trans = composite_front_to_back(
        grid, gauss, p, smem, [&](int32_t isect, int32_t flat_id, float weight) {
            const float *f = features + (flat_id - gauss_base) * n_channels + c0;
#pragma unroll
            for (int k = 0; k < CHUNK; ++k) {
                if (k < cw) {
                    acc[k] += weight * __ldg(f + k);
                }
            }
            last = isect;
        });

    if (p.inside) {
        const int64_t pix = static_cast<int64_t>(image) * grid.width * grid.height + p.pix;
        float *out = out_features + pix * n_channels + c0;
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            if (k < cw) {
                out[k] = acc[k];
            }
        }
        if (pass == 0) {
            out_trans[pix] = trans;
            out_last[pix] = last;
        }
    }
}

template <int CHUNK>
static int launch_forward(const TileGrid &grid, const ProjectedGaussians &gauss,
                          const float *features, int32_t n_channels, const ChannelPlan &plan,
                          float *out_features, float *out_trans, int32_t *out_last,
                          cudaStream_t stream) {
    const dim3 blocks(grid.tile_width, grid.tile_height, grid.n_images * plan.passes);
    const dim3 threads(grid.tile_size, grid.tile_size, 1);
    const size_t shmem = GaussianBatch::bytes(grid.tile_size * grid.tile_size);
    GSSEG_LAUNCH(blocks, threads, shmem, stream, feature_forward_kernel<CHUNK>)(
        grid, gauss, features, n_channels, plan.width, plan.passes, out_features, out_trans,
        out_last);
    return last_launch_error();
}

int launch_feature_forward(const TileGrid &grid, const ProjectedGaussians &gauss, const float *features,
                           int32_t n_channels, float *out_features, float *out_transmittance,
                           int32_t *out_last_ids, void *stream_ptr) {
    if (const int err = check_grid(grid)) {
        return err;
    }
    if (n_channels < 1) {
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
        return launch_forward<1>(grid, gauss, features, n_channels, plan, out_features,
                                 out_transmittance, out_last_ids, stream);
    case 4:
        return launch_forward<4>(grid, gauss, features, n_channels, plan, out_features,
                                 out_transmittance, out_last_ids, stream);
    case 8:
        return launch_forward<8>(grid, gauss, features, n_channels, plan, out_features,
                                 out_transmittance, out_last_ids, stream);
    case 16:
        return launch_forward<16>(grid, gauss, features, n_channels, plan, out_features,
                                  out_transmittance, out_last_ids, stream);
    default:
        return launch_forward<32>(grid, gauss, features, n_channels, plan, out_features,
                                  out_transmittance, out_last_ids, stream);
    }
}

} // namespace gsseg
