// C ABI over gsseg's CUDA launchers for tests on machines without a GPU: built together with
// gsseg/csrc/<op>/*.cu as plain C++ (-x c++ -DGSSEG_HOST_EMULATION), where "device pointers" are
// host pointers and the kernels run on CPU fibers (tests/csrc/host_emulation.cuh).
// tests/test_render_cuda.py loads the shared library with ctypes.
#include <cstdint>

#include "contribution_table/contribution_table.h"
#include "features/features.h"

namespace {

gsseg::TileGrid make_grid(int32_t n_images, int32_t n_gaussians, int32_t width, int32_t height,
                               int32_t tile_size, int32_t n_isects, const int32_t *isect_offsets,
                               const int32_t *flatten_ids) {
    gsseg::TileGrid g;
    g.n_images = n_images;
    g.n_gaussians = n_gaussians;
    g.width = width;
    g.height = height;
    g.tile_size = tile_size;
    g.tile_width = (width + tile_size - 1) / tile_size;
    g.tile_height = (height + tile_size - 1) / tile_size;
    g.n_isects = n_isects;
    g.isect_offsets = isect_offsets;
    g.flatten_ids = flatten_ids;
    return g;
}

} // namespace

extern "C" {

int emu_feature_forward(int32_t n_images, int32_t n_gaussians, int32_t width, int32_t height,
                        int32_t tile_size, int32_t n_isects, const int32_t *isect_offsets,
                        const int32_t *flatten_ids, const float *means2d, const float *conics,
                        const float *opacities, const float *features, int32_t n_channels,
                        float *out_features, float *out_transmittance, int32_t *out_last_ids) {
    const auto grid = make_grid(n_images, n_gaussians, width, height, tile_size, n_isects,
                                isect_offsets, flatten_ids);
    const gsseg::ProjectedGaussians gauss{means2d, conics, opacities};
    return gsseg::launch_feature_forward(grid, gauss, features, n_channels, out_features,
                                       out_transmittance, out_last_ids, nullptr);
}

int emu_feature_backward(int32_t n_images, int32_t n_gaussians, int32_t width, int32_t height,
                         int32_t tile_size, int32_t n_isects, const int32_t *isect_offsets,
                         const int32_t *flatten_ids, const float *means2d, const float *conics,
                         const float *opacities, const float *features, int32_t n_channels,
                         const float *transmittance, const int32_t *last_ids,
                         const float *v_out, float *v_features, float *v_means2d, float *v_conics,
                         float *v_opacities) {
    const auto grid = make_grid(n_images, n_gaussians, width, height, tile_size, n_isects,
                                isect_offsets, flatten_ids);
    const gsseg::ProjectedGaussians gauss{means2d, conics, opacities};
    return gsseg::launch_feature_backward(grid, gauss, features, n_channels, transmittance, last_ids,
                                        v_out, v_features, v_means2d, v_conics, v_opacities,
                                        nullptr);
}

int emu_table_count(int32_t n_images, int32_t n_gaussians, int32_t width, int32_t height,
                    int32_t tile_size, int32_t n_isects, const int32_t *isect_offsets,
                    const int32_t *flatten_ids, const float *means2d, const float *conics,
                    const float *opacities, int32_t *counts) {
    const auto grid = make_grid(n_images, n_gaussians, width, height, tile_size, n_isects,
                                isect_offsets, flatten_ids);
    const gsseg::ProjectedGaussians gauss{means2d, conics, opacities};
    return gsseg::launch_table_count(grid, gauss, counts, nullptr);
}

int emu_table_fill(int32_t n_images, int32_t n_gaussians, int32_t width, int32_t height,
                   int32_t tile_size, int32_t n_isects, const int32_t *isect_offsets,
                   const int32_t *flatten_ids, const float *means2d, const float *conics,
                   const float *opacities, const int64_t *offsets, int32_t *gaussian_ids,
                   float *weights) {
    const auto grid = make_grid(n_images, n_gaussians, width, height, tile_size, n_isects,
                                isect_offsets, flatten_ids);
    const gsseg::ProjectedGaussians gauss{means2d, conics, opacities};
    return gsseg::launch_table_fill(grid, gauss, offsets, gaussian_ids, weights, nullptr);
}

const char *emu_error_string(int code) { return gsseg::error_string(code); }

} // extern "C"
