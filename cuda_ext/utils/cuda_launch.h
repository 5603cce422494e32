// Raw-pointer types shared by gsseg's CUDA launchers (declared in the op headers:
// features/features.h, contribution_table/contribution_table.h).
//
// Plain C++ (no CUDA or torch types) so that both the .cu files and the torch binding
// include it. Every pointer is a device pointer to contiguous row-major data; the layouts
// follow gsplat's unpacked (packed=False) projection and tile-intersection outputs.
// Every launcher returns 0 on success or a cudaError_t value (see error_string).
#pragma once

#include <cstdint>

namespace gsseg {

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

// Human-readable message of a launcher's return code.
const char *error_string(int code);

} // namespace gsseg
