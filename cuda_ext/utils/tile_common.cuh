// Device helpers shared by gsseg's tile rasterization kernels (raw pointers only).
//
// Launch layout of every kernel here: grid (tile_width, tile_height, I * passes), block
// (tile_size, tile_size); thread (x, y) of block (tx, ty) owns pixel
// (tx * tile_size + x, ty * tile_size + y). Threads outside the image stay alive to load
// shared-memory batches and to take part in warp reductions.
#pragma once

#include <cstdint>

#include "utils/cuda_launch.h"

#ifdef GSSEG_HOST_EMULATION
// Tests without a GPU: the same kernels on CPU fibers. The header lives with the tests
// (tests/csrc/host_emulation.cuh) and is found through their include path.
#include "host_emulation.cuh"
#else
#include <cuda_runtime.h>
// kernel<<<grid, threads, shmem, stream>>>(args); a macro so host emulation can run it too.
#define GSSEG_LAUNCH(grid, threads, shmem, stream, ...) __VA_ARGS__<<<grid, threads, shmem, stream>>>
#define GSSEG_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

namespace gsseg {

constexpr unsigned kFullWarp = 0xffffffffu;

// The pixel a thread owns and the tile's range [start, end) in flatten_ids.
struct TilePixel {
    int32_t image;
    int32_t x;
    int32_t y;
    bool inside;
    int32_t pix;   // y * width + x within the image (clamped to a valid pixel when outside)
    int32_t start; // first intersection of the tile
    int32_t end;   // one past the last intersection of the tile
};

__device__ inline TilePixel tile_pixel(const TileGrid &grid, int32_t image) {
    TilePixel p;
    p.image = image;
    p.x = static_cast<int32_t>(blockIdx.x) * grid.tile_size + static_cast<int32_t>(threadIdx.x);
    p.y = static_cast<int32_t>(blockIdx.y) * grid.tile_size + static_cast<int32_t>(threadIdx.y);
    p.inside = p.x < grid.width && p.y < grid.height;
    p.pix = p.inside ? p.y * grid.width + p.x : 0;
    const int32_t n_tiles = grid.tile_width * grid.tile_height;
    const int32_t flat_tile = image * n_tiles + static_cast<int32_t>(blockIdx.y) * grid.tile_width +
                              static_cast<int32_t>(blockIdx.x);
    p.start = grid.isect_offsets[flat_tile];
    // gsplat's offsets hold each tile's start; the next tile's start (or n_isects for the
    // very last tile of the last image) ends the range.
    p.end = (flat_tile == grid.n_images * n_tiles - 1) ? grid.n_isects
                                                       : grid.isect_offsets[flat_tile + 1];
    if (p.end < p.start) {
        p.end = p.start;
    }
    return p;
}

__device__ inline int32_t block_thread_rank() {
    return static_cast<int32_t>(threadIdx.y * blockDim.x + threadIdx.x);
}

__device__ inline int32_t block_size() {
    return static_cast<int32_t>(blockDim.x * blockDim.y);
}

// Sum of v over the 32 lanes of the warp, returned in every lane. All 32 lanes must call it.
__device__ inline float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(kFullWarp, v, offset);
    }
    return v;
}

// One halving step of warp_reduce_scatter: lanes with bit OFFSET set keep the upper half of
// their N values, the others the lower half, each adding what its partner lane sends.
template <int N, int OFFSET>
__device__ inline void reduce_scatter_step(float *vals, int32_t lane) {
    if constexpr (OFFSET > 0) {
        if constexpr (N > 1) {
            constexpr int H = N / 2;
            const bool upper = (lane & OFFSET) != 0;
#pragma unroll
            for (int i = 0; i < H; ++i) {
                const float send = upper ? vals[i] : vals[i + H];
                const float keep = upper ? vals[i + H] : vals[i];
                vals[i] = keep + __shfl_xor_sync(kFullWarp, send, OFFSET);
            }
            reduce_scatter_step<H, OFFSET / 2>(vals, lane);
        } else {
            vals[0] += __shfl_xor_sync(kFullWarp, vals[0], OFFSET);
            reduce_scatter_step<1, OFFSET / 2>(vals, lane);
        }
    }
}

// Warp reduce-scatter of M values per lane (M a power of two <= 32) in M - 1 + 5 - log2(M)
// shuffles instead of 5 M: returns, in lane l, the warp total of vals[l / (32 / M)]. Lanes
// l with l % (32 / M) == 0 hold each total once. All 32 lanes must call it. Clobbers vals.
template <int M>
__device__ inline float warp_reduce_scatter(float (&vals)[M], int32_t lane) {
    static_assert(M >= 1 && M <= 32 && (M & (M - 1)) == 0, "M must be a power of two <= 32");
    reduce_scatter_step<M, 16>(vals, lane);
    return vals[0];
}

__device__ inline int32_t warp_max(int32_t v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        v = max(v, __shfl_xor_sync(kFullWarp, v, offset));
    }
    return v;
}

// Shared-memory batch of projected Gaussians a tile loads together (structure of arrays).
struct GaussianBatch {
    int32_t *ids;     // [B] flattened (image, Gaussian) index
    float2 *means2d;  // [B]
    float4 *conic_op; // [B] (a, b, c, opacity)

    // Bytes of dynamic shared memory for B Gaussians (float4 first keeps alignment).
    __host__ __device__ static size_t bytes(int32_t b) {
        return static_cast<size_t>(b) * (sizeof(float4) + sizeof(float2) + sizeof(int32_t));
    }

    // Carves the batch out of `base`; returns the first byte after it.
    __device__ unsigned char *carve(unsigned char *base, int32_t b) {
        conic_op = reinterpret_cast<float4 *>(base);
        means2d = reinterpret_cast<float2 *>(base + static_cast<size_t>(b) * sizeof(float4));
        ids = reinterpret_cast<int32_t *>(base + static_cast<size_t>(b) * (sizeof(float4) + sizeof(float2)));
        return base + bytes(b);
    }

    __device__ void load(int32_t slot, int32_t flat_id, const ProjectedGaussians &gauss) {
        ids[slot] = flat_id;
        means2d[slot] = make_float2(gauss.means2d[2 * static_cast<int64_t>(flat_id)],
                                    gauss.means2d[2 * static_cast<int64_t>(flat_id) + 1]);
        const int64_t c = 3 * static_cast<int64_t>(flat_id);
        conic_op[slot] = make_float4(gauss.conics[c], gauss.conics[c + 1], gauss.conics[c + 2],
                                     gauss.opacities[flat_id]);
    }
};

// Checks shared by every launcher; returns a cudaError_t value (0 when the grid is usable).
inline int check_grid(const TileGrid &grid) {
    const int32_t threads = grid.tile_size * grid.tile_size;
    if (grid.tile_size <= 0 || threads > 256 || threads % 32 != 0) {
        return static_cast<int>(cudaErrorInvalidConfiguration);
    }
    if (grid.n_images < 0 || grid.n_gaussians < 0 || grid.width < 0 || grid.height < 0 ||
        grid.n_isects < 0) {
        return static_cast<int>(cudaErrorInvalidValue);
    }
    return 0;
}

// How D feature channels are split into kernel passes of at most kMaxChunk channels: pass k
// covers channels [k * width, min(D, (k + 1) * width)); `chunk` is the compiled chunk size
// (the smallest of 1, 4, 8, 16, 32 that holds `width`).
struct ChannelPlan {
    int32_t passes;
    int32_t width;
    int32_t chunk;
};

inline ChannelPlan plan_channels(int32_t n_channels) {
    ChannelPlan plan;
    plan.passes = (n_channels + kMaxChunk - 1) / kMaxChunk;
    plan.width = (n_channels + plan.passes - 1) / plan.passes;
    plan.chunk = plan.width <= 1 ? 1 : plan.width <= 4 ? 4 : plan.width <= 8 ? 8 : plan.width <= 16 ? 16 : 32;
    return plan;
}

inline bool grid_is_empty(const TileGrid &grid) {
    return grid.n_images == 0 || grid.width == 0 || grid.height == 0;
}

inline int last_launch_error() {
    return static_cast<int>(cudaGetLastError());
}

} // namespace gsseg
