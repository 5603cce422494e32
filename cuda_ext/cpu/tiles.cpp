// Tile binning: which visible Gaussians touch each 16x16 tile, sorted front to back.
#include <algorithm>
#include <vector>

#include "common.h"
#include "gsseg/pixel_math.h"
#include "ops.h"

namespace gsseg_cpu {

namespace {

template <typename T>
void isect_impl(const T* means2d, const int32_t* radii, const T* depths, int64_t C, int64_t N, int tile_size,
                int tile_w, int tile_h, at::Tensor& tile_offsets, at::Tensor& flatten_ids) {
    const int64_t n_tiles = (int64_t)tile_w * tile_h;
    std::vector<int64_t> counts(C * n_tiles + 1, 0);
    for (int64_t idx = 0; idx < C * N; ++idx) {
        if (radii[idx * 2] <= 0 || radii[idx * 2 + 1] <= 0) continue;
        int x0, y0, x1, y1;
        gsseg::tile_range(means2d + idx * 2, radii + idx * 2, tile_size, tile_w, tile_h, &x0, &y0, &x1, &y1);
        const int64_t base = (idx / N) * n_tiles;
        for (int ty = y0; ty < y1; ++ty)
            for (int tx = x0; tx < x1; ++tx) counts[base + (int64_t)ty * tile_w + tx + 1] += 1;
    }
    for (int64_t i = 0; i < C * n_tiles; ++i) counts[i + 1] += counts[i];
    tile_offsets = at::empty({C * n_tiles + 1}, at::TensorOptions().dtype(at::kLong));
    std::copy(counts.begin(), counts.end(), tile_offsets.data_ptr<int64_t>());
    flatten_ids = at::empty({counts.back()}, at::TensorOptions().dtype(at::kInt));
    int32_t* ids = flatten_ids.data_ptr<int32_t>();
    std::vector<int64_t> cursor(counts.begin(), counts.end() - 1);
    for (int64_t idx = 0; idx < C * N; ++idx) {  // ascending Gaussian index: ties stay in index order
        if (radii[idx * 2] <= 0 || radii[idx * 2 + 1] <= 0) continue;
        int x0, y0, x1, y1;
        gsseg::tile_range(means2d + idx * 2, radii + idx * 2, tile_size, tile_w, tile_h, &x0, &y0, &x1, &y1);
        const int64_t base = (idx / N) * n_tiles;
        for (int ty = y0; ty < y1; ++ty)
            for (int tx = x0; tx < x1; ++tx) ids[cursor[base + (int64_t)ty * tile_w + tx]++] = (int32_t)(idx % N);
    }
#pragma omp parallel for schedule(dynamic, 4) num_threads(num_threads())
    for (int64_t t = 0; t < C * n_tiles; ++t) {
        const T* d = depths + (t / n_tiles) * N;
        std::stable_sort(ids + counts[t], ids + counts[t + 1], [d](int32_t a, int32_t b) { return d[a] < d[b]; });
    }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> isect_tiles(const at::Tensor& means2d, const at::Tensor& radii,
                                               const at::Tensor& depths, int64_t width, int64_t height,
                                               int64_t tile_size) {
    GSSEG_CHECK_CPU(means2d); GSSEG_CHECK_CPU(radii); GSSEG_CHECK_CPU(depths);
    const int64_t C = means2d.size(0), N = means2d.size(1);
    const int tile_w = (int)((width + tile_size - 1) / tile_size), tile_h = (int)((height + tile_size - 1) / tile_size);
    at::Tensor tile_offsets, flatten_ids;
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "isect_tiles", [&] {
        isect_impl<scalar_t>(means2d.data_ptr<scalar_t>(), radii.data_ptr<int32_t>(), depths.data_ptr<scalar_t>(), C,
                             N, (int)tile_size, tile_w, tile_h, tile_offsets, flatten_ids);
    });
    return {tile_offsets, flatten_ids};
}

}  // namespace gsseg_cpu
