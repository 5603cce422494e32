// Host-side entry points of gsseg's CUDA kernels.
//
// Plain C++ (no CUDA or torch types) so that both the .cu files and the torch binding
// include it. Every pointer is a device pointer to contiguous row-major data; the layouts
// follow gsplat's unpacked (packed=False) projection and tile-intersection outputs.
// Every launcher returns 0 on success or a cudaError_t value (see error_string).
#pragma once

#include <cstdint>

namespace gsseg_cuda {

// gsplat's tile intersection output for I images of N Gaussians each.
struct TileGrid {
    int32_t n_images;    // I
    int32_t n_gaussians; // N
    int32_t width;       // image width in pixels
    int32_t height;      // image height in pixels
    int32_t tile_size;   // pixels per tile side; tile_size^2 must be a multiple of 32, <= 256
    int32_t tile_width;  // ceil(width / tile_size)
    int32_t tile_height; // ceil(height / tile_size)
    int32_t n_isects;    // length of flatten_ids
    const int32_t *isect_offsets; // [I, tile_height, tile_width] first intersection of each tile
    const int32_t *flatten_ids;   // [n_isects] index into the flattened [I*N], front to back per tile
};

// Projected Gaussians, one row per (image, Gaussian) pair.
struct ProjectedGaussians {
    const float *means2d;   // [I, N, 2] pixel coordinates
    const float *conics;    // [I, N, 3] upper triangle (a, b, c) of the inverse 2D covariance
    const float *opacities; // [I, N] activated opacity
};

// Largest channel chunk one kernel pass handles; wider features are split into passes.
constexpr int32_t kMaxChunk = 32;

// Forward feature rasterization.
//   features [N, D] -> out_features [I, H, W, D] = sum_i T_i alpha_i f_i (no background),
//   out_transmittance [I, H, W] = T after the last contributor,
//   out_last_ids [I, H, W] = index into flatten_ids of the last contributor, -1 if none.
int feature_forward(const TileGrid &grid, const ProjectedGaussians &gauss,
                    const float *features, int32_t n_channels, float *out_features,
                    float *out_transmittance, int32_t *out_last_ids, void *stream);

// Backward of feature_forward. v_features [N, D] must be zeroed by the caller and is
// accumulated with atomics. v_means2d [I,N,2], v_conics [I,N,3], v_opacities [I,N] are
// either all null (features-only gradient) or all zeroed buffers.
int feature_backward(const TileGrid &grid, const ProjectedGaussians &gauss,
                     const float *features, int32_t n_channels, const float *transmittance,
                     const int32_t *last_ids, const float *v_out_features,
                     float *v_features, float *v_means2d, float *v_conics,
                     float *v_opacities, void *stream);

// Contribution table, pass 1: counts [I*H*W] = number of contributors per pixel.
int table_count(const TileGrid &grid, const ProjectedGaussians &gauss, int32_t *counts,
                void *stream);

// Contribution table, pass 2: offsets [I*H*W + 1] is the exclusive prefix sum of counts;
// writes gaussian_ids [nnz] (Gaussian index in [0, N)) and weights [nnz] (T_i * alpha_i)
// front to back for every pixel.
int table_fill(const TileGrid &grid, const ProjectedGaussians &gauss, const int64_t *offsets,
               int32_t *gaussian_ids, float *weights, void *stream);

// Human-readable message of a launcher's return code.
const char *error_string(int code);

} // namespace gsseg_cuda
