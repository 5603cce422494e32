// Front-to-back compositing of any number of channels (forward) and its analytic backward.
// One OpenMP task per (camera, tile); each tile gathers its depth-sorted Gaussians into a
// contiguous local buffer, then processes its pixel rows entry by entry (σ vectorised over the
// row's pixels), keeping each pixel's front-to-back (backward: back-to-front) order.
#include <algorithm>
#include <vector>

#include "common.h"
#include "gsseg/pixel_math.h"
#include "ops.h"
#include "tile_gaussians.h"

namespace gsseg_cpu {

namespace {

// σ of row entry j at the pixel centres fxs[rlo..rhi) of the row with centre y = fy. Same
// arithmetic as gsseg::gaussian_sigma (bit-identical), vectorised over the pixels.
template <typename T>
inline void row_sigmas(const TileGaussians<T>& tg, int64_t j, const T* fxs, T fy, T* sig) {
    const T x = tg.rx[j], dy = tg.ry[j] - fy, a = tg.ra[j], b = tg.rb[j], c = tg.rc[j];
    const T cdy2 = c * dy * dy;
    for (int p = tg.rlo[j]; p < tg.rhi[j]; ++p) {
        const T dx = x - fxs[p];
        sig[p] = T(0.5) * (a * dx * dx + cdy2) + b * dx * dy;
    }
}

template <typename T>
void rasterize_forward_impl(const T* means2d, const T* conics, const T* opacities, const T* colors,
                            const int64_t* tile_offsets, const int32_t* flatten_ids, int64_t C, int64_t N, int64_t K,
                            int width, int height, int tile_size, T* out, T* alpha, T* final_t, int32_t* n_done) {
    const int tile_w = (width + tile_size - 1) / tile_size, tile_h = (height + tile_size - 1) / tile_size;
    const int64_t n_tiles = (int64_t)tile_w * tile_h;
#pragma omp parallel num_threads(num_threads())
    {
        TileGaussians<T> tg;
        std::vector<T> acc(tile_size * K), trans(tile_size), fxs(tile_size), sig(tile_size);
        std::vector<int32_t> done(tile_size);
        std::vector<char> active(tile_size);
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < C * n_tiles; ++t) {
            const int64_t c = t / n_tiles, tile = t % n_tiles;
            const int tx0 = (int)(tile % tile_w) * tile_size, ty0 = (int)(tile / tile_w) * tile_size;
            const int npx = std::min(tx0 + tile_size, width) - tx0;
            const int64_t start = tile_offsets[t], n = tile_offsets[t + 1] - start;
            tg.gather(means2d, conics, opacities, colors, flatten_ids + start, n, K, c * N);
            for (int p = 0; p < npx; ++p) fxs[p] = T(tx0 + p) + T(0.5);
            for (int py = ty0; py < std::min(ty0 + tile_size, height); ++py) {
                const T fy = T(py) + T(0.5);
                tg.select_row(fy, tx0, npx);
                std::fill(acc.begin(), acc.end(), T(0));
                std::fill(trans.begin(), trans.end(), T(1));
                std::fill(done.begin(), done.end(), 0);
                std::fill(active.begin(), active.end(), 1);
                int n_active = npx;
                // entry-major: every pixel still sees the entries in depth order
                for (int64_t j = 0; j < tg.row_size() && n_active > 0; ++j) {
                    row_sigmas(tg, j, fxs.data(), fy, sig.data());
                    const T cut = tg.rcut[j];
                    for (int p = tg.rlo[j]; p < tg.rhi[j]; ++p) {
                        if (sig[p] > cut || !active[p]) continue;
                        T al, vis, next_t, w;
                        if (!gsseg::gaussian_alpha(tg.rop[j], sig[p], &al, &vis)) continue;
                        if (!gsseg::transmittance_step(trans[p], al, &next_t, &w)) {
                            active[p] = 0;
                            --n_active;
                            continue;
                        }
                        const int64_t i = tg.row_pos[j];
                        const T* col = tg.color.data() + i * K;
                        T* a = acc.data() + p * K;
#pragma omp simd
                        for (int64_t k = 0; k < K; ++k) a[k] += w * col[k];
                        trans[p] = next_t;
                        done[p] = (int32_t)(i + 1);
                    }
                }
                for (int p = 0; p < npx; ++p) {
                    const int64_t pix = (c * height + py) * (int64_t)width + tx0 + p;
                    std::copy(acc.begin() + p * K, acc.begin() + (p + 1) * K, out + pix * K);
                    alpha[pix] = T(1) - trans[p];
                    final_t[pix] = trans[p];
                    n_done[pix] = done[p];
                }
            }
        }
    }
}

template <typename T>
void rasterize_backward_impl(const T* means2d, const T* conics, const T* opacities, const T* colors,
                             const int64_t* tile_offsets, const int32_t* flatten_ids, int64_t C, int64_t N,
                             int64_t K, int width, int height, int tile_size, const T* final_t,
                             const int32_t* n_done, const T* v_out, const T* v_alpha, T* v_means2d, T* v_conics,
                             T* v_opacities, T* v_colors) {
    const int tile_w = (width + tile_size - 1) / tile_size, tile_h = (height + tile_size - 1) / tile_size;
    const int64_t n_tiles = (int64_t)tile_w * tile_h;
#pragma omp parallel num_threads(num_threads())
    {
        TileGaussians<T> tg;
        std::vector<T> vgeo, vcol, buffer(tile_size * K), trans(tile_size), t_final(tile_size), va(tile_size),
            fxs(tile_size), sig(tile_size);
        std::vector<int32_t> done(tile_size);
        std::vector<char> touched;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < C * n_tiles; ++t) {
            const int64_t c = t / n_tiles, tile = t % n_tiles;
            const int tx0 = (int)(tile % tile_w) * tile_size, ty0 = (int)(tile / tile_w) * tile_size;
            const int npx = std::min(tx0 + tile_size, width) - tx0;
            const int64_t start = tile_offsets[t], n = tile_offsets[t + 1] - start;
            if (n == 0) continue;
            tg.gather(means2d, conics, opacities, colors, flatten_ids + start, n, K, c * N);
            vgeo.assign(n * 6, T(0));  // v_mean2d (2), v_conic (3), v_opacity (1)
            vcol.assign(n * K, T(0));
            touched.assign(n, 0);
            for (int p = 0; p < npx; ++p) fxs[p] = T(tx0 + p) + T(0.5);
            for (int py = ty0; py < std::min(ty0 + tile_size, height); ++py) {
                const T fy = T(py) + T(0.5);
                const int64_t row_pix = (c * height + py) * (int64_t)width + tx0;
                int32_t max_done = 0;
                for (int p = 0; p < npx; ++p) {
                    done[p] = n_done[row_pix + p];
                    trans[p] = t_final[p] = final_t[row_pix + p];
                    va[p] = v_alpha[row_pix + p];
                    max_done = std::max(max_done, done[p]);
                }
                if (max_done == 0) continue;
                tg.select_row(fy, tx0, npx);
                std::fill(buffer.begin(), buffer.end(), T(0));
                const int64_t rdone =
                    std::lower_bound(tg.row_pos.begin(), tg.row_pos.end(), max_done) - tg.row_pos.begin();
                // entry-major, back to front: every pixel sees its composited entries in reverse order
                for (int64_t j = rdone - 1; j >= 0; --j) {
                    const int64_t i = tg.row_pos[j];
                    row_sigmas(tg, j, fxs.data(), fy, sig.data());
                    const T cut = tg.rcut[j], op = tg.rop[j];
                    const T* col = tg.color.data() + i * K;
                    T* vc = vcol.data() + i * K;
                    T* vg = vgeo.data() + i * 6;
                    for (int p = tg.rlo[j]; p < tg.rhi[j]; ++p) {
                        if (sig[p] > cut || i >= done[p]) continue;
                        T al, vis;
                        if (!gsseg::gaussian_alpha(op, sig[p], &al, &vis)) continue;
                        T t_before, ra;
                        gsseg::transmittance_unstep(trans[p], al, &t_before, &ra);
                        const T w = al * t_before;
                        const T* vo = v_out + (row_pix + p) * K;
                        T* buf = buffer.data() + p * K;
                        T v_ch = T(0);
#pragma omp simd reduction(+ : v_ch)
                        for (int64_t k = 0; k < K; ++k)
                            v_ch += gsseg::composite_v_alpha_channel(col[k], vo[k], buf[k], t_before, ra);
#pragma omp simd
                        for (int64_t k = 0; k < K; ++k) {
                            vc[k] += w * vo[k];
                            buf[k] += w * col[k];
                        }
                        const T v_al = gsseg::composite_v_alpha_from_alpha(va[p], t_final[p], ra) + v_ch;
                        const T dx = tg.rx[j] - fxs[p], dy = tg.ry[j] - fy;
                        gsseg::alpha_backward(op, tg.ra[j], tg.rb[j], tg.rc[j], dx, dy, vis, v_al, vg + 5, vg + 2, vg);
                        trans[p] = t_before;
                        touched[i] = 1;
                    }
                }
            }
            const int32_t* ids = flatten_ids + start;
            for (int64_t i = 0; i < n; ++i) {
                if (!touched[i]) continue;
                const int64_t g = ids[i], cg = c * N + g;
                const T* vg = vgeo.data() + i * 6;
                atomic_add(v_means2d + cg * 2, vg[0]);
                atomic_add(v_means2d + cg * 2 + 1, vg[1]);
                for (int j = 0; j < 3; ++j) atomic_add(v_conics + cg * 3 + j, vg[2 + j]);
                atomic_add(v_opacities + g, vg[5]);
                const T* vc = vcol.data() + i * K;
                for (int64_t k = 0; k < K; ++k) atomic_add(v_colors + cg * K + k, vc[k]);
            }
        }
    }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_forward(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& colors,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size) {
    GSSEG_CHECK_CPU(means2d); GSSEG_CHECK_CPU(conics); GSSEG_CHECK_CPU(opacities); GSSEG_CHECK_CPU(colors);
    GSSEG_CHECK_CPU(tile_offsets); GSSEG_CHECK_CPU(flatten_ids);
    const int64_t C = colors.size(0), N = colors.size(1), K = colors.size(2);
    auto out = at::empty({C, height, width, K}, colors.options());
    auto alpha = at::empty({C, height, width, 1}, colors.options());
    auto final_t = at::empty({C, height, width}, colors.options());
    auto n_done = at::empty({C, height, width}, colors.options().dtype(at::kInt));
    AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "rasterize_forward", [&] {
        rasterize_forward_impl<scalar_t>(
            means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
            colors.data_ptr<scalar_t>(), tile_offsets.data_ptr<int64_t>(), flatten_ids.data_ptr<int32_t>(), C, N, K,
            (int)width, (int)height, (int)tile_size, out.data_ptr<scalar_t>(), alpha.data_ptr<scalar_t>(),
            final_t.data_ptr<scalar_t>(), n_done.data_ptr<int32_t>());
    });
    return {out, alpha, final_t, n_done};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_backward(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& colors,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size, const at::Tensor& final_t, const at::Tensor& n_done, const at::Tensor& v_out,
    const at::Tensor& v_alpha) {
    GSSEG_CHECK_CPU(final_t); GSSEG_CHECK_CPU(n_done); GSSEG_CHECK_CPU(v_out); GSSEG_CHECK_CPU(v_alpha);
    const int64_t C = colors.size(0), N = colors.size(1), K = colors.size(2);
    auto v_means2d = at::zeros_like(means2d);
    auto v_conics = at::zeros_like(conics);
    auto v_opacities = at::zeros_like(opacities);
    auto v_colors = at::zeros_like(colors);
    AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "rasterize_backward", [&] {
        rasterize_backward_impl<scalar_t>(
            means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
            colors.data_ptr<scalar_t>(), tile_offsets.data_ptr<int64_t>(), flatten_ids.data_ptr<int32_t>(), C, N, K,
            (int)width, (int)height, (int)tile_size, final_t.data_ptr<scalar_t>(), n_done.data_ptr<int32_t>(),
            v_out.data_ptr<scalar_t>(), v_alpha.data_ptr<scalar_t>(), v_means2d.data_ptr<scalar_t>(),
            v_conics.data_ptr<scalar_t>(), v_opacities.data_ptr<scalar_t>(), v_colors.data_ptr<scalar_t>());
    });
    return {v_means2d, v_conics, v_opacities, v_colors};
}

}  // namespace gsseg_cpu
