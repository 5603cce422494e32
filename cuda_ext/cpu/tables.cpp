// Per-pixel contribution tables (CSR): the Gaussians each pixel composites and their weights
// T_i * alpha_i, front to back, truncated by the transmittance stop rule. Camera 0 only.
#include <vector>

#include "common.h"
#include "gsseg/pixel_math.h"
#include "ops.h"
#include "tile_gaussians.h"

namespace gsseg_cpu {

namespace {

// Walks one pixel's gathered tile list; calls emit(Gaussian id, weight) for every composited Gaussian.
template <typename T, typename Emit>
inline void walk_pixel(const TileGaussians<T>& tg, const int32_t* ids, int px, T fx, T fy, Emit emit) {
    T trans = T(1);
    T sig[kBlock];
    const int64_t n = tg.row_size();
    for (int64_t lo = 0; lo < n; lo += kBlock) {
        const int64_t m = std::min(kBlock, n - lo);
        tg.sigma_block(lo, m, fx, fy, sig);
        for (int64_t j = 0; j < m; ++j) {
            if (sig[j] > tg.rcut[lo + j] || px < tg.rlo[lo + j] || px >= tg.rhi[lo + j]) continue;
            T al, vis, next_t, w;
            if (!gsseg::gaussian_alpha(tg.rop[lo + j], sig[j], &al, &vis)) continue;
            if (!gsseg::transmittance_step(trans, al, &next_t, &w)) return;
            emit(ids[tg.row_pos[lo + j]], w);
            trans = next_t;
        }
    }
}

template <typename T>
void build_table_impl(const T* means2d, const T* conics, const T* opacities, const int64_t* tile_offsets,
                      const int32_t* flatten_ids, int width, int height, int tile_size, at::Tensor& offsets,
                      at::Tensor& gaussian_ids, at::Tensor& weights) {
    const int tile_w = (width + tile_size - 1) / tile_size, tile_h = (height + tile_size - 1) / tile_size;
    const int64_t n_tiles = (int64_t)tile_w * tile_h, n_pix = (int64_t)width * height;
    offsets = at::zeros({n_pix + 1}, at::TensorOptions().dtype(at::kLong));
    int64_t* off = offsets.data_ptr<int64_t>();
    auto for_each_pixel = [&](auto body) {
#pragma omp parallel num_threads(num_threads())
        {
            TileGaussians<T> tg;
#pragma omp for schedule(dynamic, 1)
            for (int64_t tile = 0; tile < n_tiles; ++tile) {
                const int tx0 = (int)(tile % tile_w) * tile_size, ty0 = (int)(tile / tile_w) * tile_size;
                const int64_t start = tile_offsets[tile], n = tile_offsets[tile + 1] - start;
                tg.gather(means2d, conics, opacities, nullptr, flatten_ids + start, n, 0, 0);
                for (int py = ty0; py < std::min(ty0 + tile_size, height); ++py) {
                    const int npx = std::min(tx0 + tile_size, width) - tx0;
                    tg.select_row(T(py) + T(0.5), tx0, npx);
                    for (int px = tx0; px < tx0 + npx; ++px)
                        body((int64_t)py * width + px, px - tx0, T(px) + T(0.5), T(py) + T(0.5), tg, flatten_ids + start);
                }
            }
        }
    };
    for_each_pixel([&](int64_t pix, int p, T fx, T fy, const TileGaussians<T>& tg, const int32_t* ids) {
        int64_t count = 0;
        walk_pixel(tg, ids, p, fx, fy, [&](int64_t, T) { ++count; });
        off[pix + 1] = count;
    });
    for (int64_t p = 0; p < n_pix; ++p) off[p + 1] += off[p];
    gaussian_ids = at::empty({off[n_pix]}, at::TensorOptions().dtype(at::kInt));
    weights = at::empty({off[n_pix]}, at::TensorOptions().dtype(at::kFloat));
    int32_t* gid = gaussian_ids.data_ptr<int32_t>();
    float* wt = weights.data_ptr<float>();
    for_each_pixel([&](int64_t pix, int p, T fx, T fy, const TileGaussians<T>& tg, const int32_t* ids) {
        int64_t pos = off[pix];
        walk_pixel(tg, ids, p, fx, fy, [&](int64_t g, T w) {
            gid[pos] = (int32_t)g;
            wt[pos] = (float)w;
            ++pos;
        });
    });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> build_table(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size) {
    GSSEG_CHECK_CPU(means2d); GSSEG_CHECK_CPU(conics); GSSEG_CHECK_CPU(opacities);
    GSSEG_CHECK_CPU(tile_offsets); GSSEG_CHECK_CPU(flatten_ids);
    at::Tensor offsets, gaussian_ids, weights;
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "build_table", [&] {
        build_table_impl<scalar_t>(means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(),
                                   opacities.data_ptr<scalar_t>(), tile_offsets.data_ptr<int64_t>(),
                                   flatten_ids.data_ptr<int32_t>(), (int)width, (int)height, (int)tile_size,
                                   offsets, gaussian_ids, weights);
    });
    return {offsets, gaussian_ids, weights};
}

}  // namespace gsseg_cpu
