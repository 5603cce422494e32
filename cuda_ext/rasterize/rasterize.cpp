// Front-to-back compositing of any number of channels (forward) and its analytic backward.
// One OpenMP task per (camera, tile); each tile gathers the depth-sorted Gaussians that can reach
// one of its pixels into records with per-row lists (tile_rows.h). A pixel row is processed as
// blocks of 8 pixels (pixel_lanes.h): first exp(-σ) of every (record, block) pair of the row,
// then the pairs in depth order (backward: reverse order), each a few vector operations on the
// block's transmittances, so every pixel still sees its records front to back. The backward
// accumulates gradients per record, then adds them to the outputs without atomics: one thread
// writes the outputs directly, other threads write private buffers summed at the end (atomics
// only when those buffers would be too large).
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "utils/cpu.h"
#include "utils/pixel_math.h"
#include "rasterize/rasterize.h"
#include "utils/pixel_lanes.h"
#include "utils/tile_rows.h"

namespace gsseg {

namespace {

constexpr int64_t kPrivateBufferBytes = int64_t(512) << 20;  // cap on the backward's private buffers

// Calls fn(std::integral_constant<int, KC>) with KC = K for common channel counts (RGB + depth,
// plus 16 or 32 features), else KC = 0 (runtime K): a fixed K unrolls the per-channel loops.
template <typename Fn>
void dispatch_channels(int64_t K, Fn fn) {
    switch (K) {
        case 4: fn(std::integral_constant<int, 4>()); break;
        case 20: fn(std::integral_constant<int, 20>()); break;
        case 36: fn(std::integral_constant<int, 36>()); break;
        default: fn(std::integral_constant<int, 0>()); break;
    }
}

template <typename T, int KC>
void rasterize_forward_impl(const T* means2d, const T* conics, const T* opacities, const T* colors,
                            const int64_t* tile_offsets, const int32_t* flatten_ids, int64_t C, int64_t N, int64_t K,
                            int width, int height, int tile_size, T* out, T* alpha, T* final_t, int32_t* n_done) {
    const int tile_w = (width + tile_size - 1) / tile_size, tile_h = (height + tile_size - 1) / tile_size;
    const int64_t n_tiles = (int64_t)tile_w * tile_h;
    std::vector<GaussRecord<T>> records(C * N);
    make_records(means2d, conics, opacities, C, N, records.data());
#pragma omp parallel num_threads(num_threads())
    {
        const int64_t Kc = KC > 0 ? int64_t(KC) : K;  // a literal inside the outlined region when KC > 0
        TileRows<T> tr;
        RowLanes<T> lanes(tile_size);
        RowBlocks<T> blocks;
        std::vector<T> acc((size_t)lanes.npad * K);
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < C * n_tiles; ++t) {
            const int64_t c = t / n_tiles, tile = t % n_tiles;
            const int tx0 = (int)(tile % tile_w) * tile_size, ty0 = (int)(tile / tile_w) * tile_size;
            const int npx = std::min(tx0 + tile_size, width) - tx0, npy = std::min(ty0 + tile_size, height) - ty0;
            const int64_t start = tile_offsets[t], n = tile_offsets[t + 1] - start;
            tr.build(records.data() + c * N, colors + c * N * K, flatten_ids + start, n, K, tx0, ty0, npx, npy);
            lanes.set_columns(tx0, npx);
            for (int r = 0; r < npy; ++r) {
                const int py = ty0 + r;
                std::fill(acc.begin(), acc.end(), T(0));
                composite_row(tr, r, T(py) + T(0.5), npx, lanes, blocks, [&](int p, int32_t j, T w) {
                    const T* col = tr.color.data() + (int64_t)j * Kc;
                    T* acc_p = acc.data() + (int64_t)p * Kc;
#pragma omp simd
                    for (int64_t k = 0; k < Kc; ++k) acc_p[k] += w * col[k];
                });
                for (int p = 0; p < npx; ++p) {
                    const int64_t pix = (c * height + py) * (int64_t)width + tx0 + p;
                    std::copy(acc.begin() + p * K, acc.begin() + (p + 1) * K, out + pix * K);
                    alpha[pix] = T(1) - lanes.trans[p];
                    final_t[pix] = lanes.trans[p];
                    n_done[pix] = lanes.done[p];
                }
            }
        }
    }
}

// Where one thread adds its gradients: the outputs (plainly or atomically) or a private buffer.
template <typename T>
struct GradSink {
    T *means2d, *conics, *opacities, *colors;
    bool atomic;

    inline void add(T* dst, T v) const {
        if (atomic)
            atomic_add(dst, v);
        else
            *dst += v;
    }
};

template <typename T, int KC>
void rasterize_backward_impl(const T* means2d, const T* conics, const T* opacities, const T* colors,
                             const int64_t* tile_offsets, const int32_t* flatten_ids, int64_t C, int64_t N,
                             int64_t K, int width, int height, int tile_size, const T* final_t,
                             const int32_t* n_done, const T* v_out, const T* v_alpha, T* v_means2d, T* v_conics,
                             T* v_opacities, T* v_colors) {
    const int tile_w = (width + tile_size - 1) / tile_size, tile_h = (height + tile_size - 1) / tile_size;
    const int64_t n_tiles = (int64_t)tile_w * tile_h;
    const int max_threads = std::max(1, num_threads());
    // private buffer of a thread: [C*N*2 means2d | C*N*3 conics | N opacities | C*N*K colours]
    const int64_t priv_size = C * N * (5 + K) + N;
    const bool use_private = (int64_t)(max_threads - 1) * priv_size * (int64_t)sizeof(T) <= kPrivateBufferBytes;
    std::vector<std::vector<T>> priv(max_threads);
    std::vector<GaussRecord<T>> records(C * N);
    make_records(means2d, conics, opacities, C, N, records.data());
#pragma omp parallel num_threads(max_threads)
    {
        const int n_threads = omp_get_num_threads(), tid = omp_get_thread_num();
        GradSink<T> sink{v_means2d, v_conics, v_opacities, v_colors, n_threads > 1 && !use_private};
        if (n_threads > 1 && use_private && tid > 0) {
            priv[tid].assign(priv_size, T(0));
            T* base = priv[tid].data();
            sink = {base, base + C * N * 2, base + C * N * 5, base + C * N * 5 + N, false};
        }
        const int64_t Kc = KC > 0 ? int64_t(KC) : K;  // a literal inside the outlined region when KC > 0
        TileRows<T> tr;
        RowLanes<T> lanes(tile_size);
        RowLanesBackward<T> lb(lanes.npad, K);
        RowBlocks<T> blocks;
        std::vector<T> vgeo, vcol, vc_tmp(K);
        std::vector<char> touched;
        alignas(64) T w[kLanes];
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < C * n_tiles; ++t) {
            const int64_t c = t / n_tiles, tile = t % n_tiles;
            const int tx0 = (int)(tile % tile_w) * tile_size, ty0 = (int)(tile / tile_w) * tile_size;
            const int npx = std::min(tx0 + tile_size, width) - tx0, npy = std::min(ty0 + tile_size, height) - ty0;
            const int64_t start = tile_offsets[t], n = tile_offsets[t + 1] - start;
            if (n == 0) continue;
            tr.build(records.data() + c * N, colors + c * N * K, flatten_ids + start, n, K, tx0, ty0, npx, npy);
            const int32_t m = tr.size();
            if (m == 0) continue;
            vgeo.assign((int64_t)m * 6, T(0));  // v_mean2d (2), v_conic (3), v_opacity (1)
            vcol.assign((int64_t)m * K, T(0));
            touched.assign(m, 0);
            lanes.set_columns(tx0, npx);
            const int npad = lanes.npad;
            for (int r = 0; r < npy; ++r) {
                const int py = ty0 + r;
                const T fy = T(py) + T(0.5);
                const int64_t row_pix = (c * height + py) * (int64_t)width + tx0;
                int32_t max_done = 0;
                for (int p = 0; p < npad; ++p) {
                    const bool real = p < npx;
                    lanes.done[p] = real ? n_done[row_pix + p] : 0;
                    lanes.trans[p] = lb.t_final[p] = real ? final_t[row_pix + p] : T(1);
                    lb.v_alpha[p] = real ? v_alpha[row_pix + p] : T(0);
                    lb.buffer[p] = T(0);  // Σ_k v_out_k · S_k, S = Σ_{j>i} w_j c_j
                    for (int64_t k = 0; k < K; ++k) lb.v_out_t[k * npad + p] = real ? v_out[(row_pix + p) * K + k] : T(0);
                    max_done = std::max(max_done, (int32_t)lanes.done[p]);
                }
                if (max_done == 0) continue;
                const int32_t* first = tr.row_begin(r);
                const int32_t* last = tr.row_end(r);
                while (last != first && tr.entries[last[-1]].pos >= max_done) --last;
                blocks.build(tr, first, last, fy, lanes);
                // record-major, back to front: every pixel sees its composited records in reverse order
                for (int32_t i = blocks.size() - 1; i >= 0; --i) {
                    const int32_t j = blocks.record[i];
                    const int b = blocks.block[i];
                    const TileEntry<T>& e = tr.entries[j];
                    const T* col = tr.color.data() + (int64_t)j * Kc;
                    unsigned bits = backward_lanes<T, KC>(e, e.y - fy, blocks.vis.data() + (int64_t)i * kLanes, b, col, K,
                                                          lanes, lb, w, vgeo.data() + (int64_t)j * 6);
                    if (bits == 0) continue;
                    touched[j] = 1;
                    // Σ_l w_l v_out_l summed in a local first: lanes add to it without a store chain
                    T vsum[KC > 0 ? KC : 1];
                    T* vs = KC > 0 ? vsum : vc_tmp.data();
                    std::fill(vs, vs + Kc, T(0));
                    for (; bits != 0; bits &= bits - 1) {
                        const int l = __builtin_ctz(bits);
                        const T* vo = v_out + (row_pix + b * kLanes + l) * Kc;
                        const T wl = w[l];
#pragma omp simd
                        for (int64_t k = 0; k < Kc; ++k) vs[k] += wl * vo[k];
                    }
                    T* vc = vcol.data() + (int64_t)j * Kc;
#pragma omp simd
                    for (int64_t k = 0; k < Kc; ++k) vc[k] += vs[k];
                }
            }
            const int32_t* ids = flatten_ids + start;
            constexpr int32_t kAhead = 8;  // prefetch distance: the records' Gaussians are scattered over the outputs
            for (int32_t j = 0; j < m; ++j) {
                if (j + kAhead < m) {
                    const int64_t g_ahead = ids[tr.entries[j + kAhead].pos], cg_ahead = c * N + g_ahead;
                    __builtin_prefetch(sink.colors + cg_ahead * K, 1);
                    __builtin_prefetch(sink.means2d + cg_ahead * 2, 1);
                    __builtin_prefetch(sink.conics + cg_ahead * 3, 1);
                    __builtin_prefetch(sink.opacities + g_ahead, 1);
                }
                if (!touched[j]) continue;
                const int64_t g = ids[tr.entries[j].pos], cg = c * N + g;
                const T* vg = vgeo.data() + (int64_t)j * 6;
                sink.add(sink.means2d + cg * 2, vg[0]);
                sink.add(sink.means2d + cg * 2 + 1, vg[1]);
                for (int q = 0; q < 3; ++q) sink.add(sink.conics + cg * 3 + q, vg[2 + q]);
                sink.add(sink.opacities + g, vg[5]);
                const T* vc = vcol.data() + (int64_t)j * K;
                T* dst = sink.colors + cg * K;
                if (sink.atomic)
                    for (int64_t k = 0; k < K; ++k) atomic_add(dst + k, vc[k]);
                else
#pragma omp simd
                    for (int64_t k = 0; k < K; ++k) dst[k] += vc[k];
            }
        }
        // implicit barrier of the loop above: every private buffer is complete
        if (n_threads > 1 && use_private) {
            const int64_t n_m2 = C * N * 2, n_con = C * N * 3;
#pragma omp for schedule(static)
            for (int64_t e = 0; e < priv_size; ++e) {
                T s = T(0);
                for (int q = 1; q < n_threads; ++q) s += priv[q][e];
                if (e < n_m2)
                    v_means2d[e] += s;
                else if (e < n_m2 + n_con)
                    v_conics[e - n_m2] += s;
                else if (e < n_m2 + n_con + N)
                    v_opacities[e - n_m2 - n_con] += s;
                else
                    v_colors[e - n_m2 - n_con - N] += s;
            }
        }
    }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_forward_cpu(
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
        dispatch_channels(K, [&](auto kc) {
            rasterize_forward_impl<scalar_t, decltype(kc)::value>(
                means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
                colors.data_ptr<scalar_t>(), tile_offsets.data_ptr<int64_t>(), flatten_ids.data_ptr<int32_t>(), C, N,
                K, (int)width, (int)height, (int)tile_size, out.data_ptr<scalar_t>(), alpha.data_ptr<scalar_t>(),
                final_t.data_ptr<scalar_t>(), n_done.data_ptr<int32_t>());
        });
    });
    return {out, alpha, final_t, n_done};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_backward_cpu(
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
        dispatch_channels(K, [&](auto kc) {
            rasterize_backward_impl<scalar_t, decltype(kc)::value>(
                means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
                colors.data_ptr<scalar_t>(), tile_offsets.data_ptr<int64_t>(), flatten_ids.data_ptr<int32_t>(), C, N,
                K, (int)width, (int)height, (int)tile_size, final_t.data_ptr<scalar_t>(), n_done.data_ptr<int32_t>(),
                v_out.data_ptr<scalar_t>(), v_alpha.data_ptr<scalar_t>(), v_means2d.data_ptr<scalar_t>(),
                v_conics.data_ptr<scalar_t>(), v_opacities.data_ptr<scalar_t>(), v_colors.data_ptr<scalar_t>());
        });
    });
    return {v_means2d, v_conics, v_opacities, v_colors};
}

}  // namespace gsseg
