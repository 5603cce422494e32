// Feature rendering from a contribution table for a set of pixels: forward gather + weighted
// sum (parallel over pixels), backward scatter-add into the per-Gaussian features.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "utils/cpu.h"
#include "table_features/table_features.h"

namespace gsseg {

namespace {

constexpr int64_t kAhead = 16;  // prefetch distance: a pixel's Gaussians are scattered over the features

// D = compile-time feature width (0: runtime width d). A fixed width keeps a pixel's sums (gather)
// or upstream gradient (scatter) in registers; the arithmetic and its order are the same either way.
template <typename T, int D>
void gather_impl(const int64_t* offsets, const int32_t* gids, const float* weights, const int64_t* pixels,
                 const int64_t* order, int64_t P, const T* features, int64_t d, T* out) {
    if constexpr (D > 0) d = D;
#pragma omp parallel for schedule(dynamic, 64) num_threads(num_threads())
    for (int64_t q = 0; q < P; ++q) {
        const int64_t p = order[q];
        T* o = out + p * d;
        const int64_t e0 = offsets[pixels[p]], e1 = offsets[pixels[p] + 1];
        if constexpr (D > 0) {
            // two partial sums (even / odd entries): two independent add chains per channel
            T acc0[D > 0 ? D : 1], acc1[D > 0 ? D : 1];
            for (int k = 0; k < D; ++k) acc0[k] = acc1[k] = T(0);
            int64_t e = e0;
            for (; e + 1 < e1; e += 2) {
                if (e + kAhead + 1 < e1) {
                    __builtin_prefetch(features + (int64_t)gids[e + kAhead] * D);
                    __builtin_prefetch(features + (int64_t)gids[e + kAhead + 1] * D);
                }
                const T w0 = T(weights[e]), w1 = T(weights[e + 1]);
                const T* f0 = features + (int64_t)gids[e] * D;
                const T* f1 = features + (int64_t)gids[e + 1] * D;
#pragma omp simd
                for (int k = 0; k < D; ++k) {
                    acc0[k] += w0 * f0[k];
                    acc1[k] += w1 * f1[k];
                }
            }
            if (e < e1) {
                const T w0 = T(weights[e]);
                const T* f0 = features + (int64_t)gids[e] * D;
#pragma omp simd
                for (int k = 0; k < D; ++k) acc0[k] += w0 * f0[k];
            }
            for (int k = 0; k < D; ++k) o[k] = acc0[k] + acc1[k];
        } else {
            for (int64_t k = 0; k < d; ++k) o[k] = T(0);
            for (int64_t e = e0; e < e1; ++e) {
                const T w = T(weights[e]);
                const T* f = features + (int64_t)gids[e] * d;
#pragma omp simd
                for (int64_t k = 0; k < d; ++k) o[k] += w * f[k];
            }
        }
    }
}

template <typename T, int D>
void scatter_impl(const int64_t* offsets, const int32_t* gids, const float* weights, const int64_t* pixels,
                  const int64_t* order, int64_t P, const T* v_out, int64_t d, T* v_features) {
    if constexpr (D > 0) d = D;
    // serial: contributions of different pixels hit the same Gaussians (a split over two threads with
    // private buffers measured no faster on two cores)
    for (int64_t q = 0; q < P; ++q) {
        const int64_t p = order[q];
        const int64_t e0 = offsets[pixels[p]], e1 = offsets[pixels[p] + 1];
        if constexpr (D > 0) {
            T g[D > 0 ? D : 1];
            for (int k = 0; k < D; ++k) g[k] = v_out[p * D + k];
            for (int64_t e = e0; e < e1; ++e) {
                if (e + kAhead < e1) __builtin_prefetch(v_features + (int64_t)gids[e + kAhead] * D, 1);
                const T w = T(weights[e]);
                T* f = v_features + (int64_t)gids[e] * D;
#pragma omp simd
                for (int k = 0; k < D; ++k) f[k] += w * g[k];
            }
        } else {
            const T* g = v_out + p * d;
            for (int64_t e = e0; e < e1; ++e) {
                const T w = T(weights[e]);
                T* f = v_features + (int64_t)gids[e] * d;
#pragma omp simd
                for (int64_t k = 0; k < d; ++k) f[k] += w * g[k];
            }
        }
    }
}

// Calls fn(std::integral_constant<int, D>) with D = d for the common widths, else D = 0.
template <typename Fn>
void dispatch_width(int64_t d, Fn fn) {
    switch (d) {
        case 1: fn(std::integral_constant<int, 1>()); break;
        case 2: fn(std::integral_constant<int, 2>()); break;
        case 3: fn(std::integral_constant<int, 3>()); break;
        case 4: fn(std::integral_constant<int, 4>()); break;
        case 8: fn(std::integral_constant<int, 8>()); break;
        case 16: fn(std::integral_constant<int, 16>()); break;
        case 17: fn(std::integral_constant<int, 17>()); break;
        case 32: fn(std::integral_constant<int, 32>()); break;
        case 33: fn(std::integral_constant<int, 33>()); break;
        default: fn(std::integral_constant<int, 0>()); break;
    }
}

// Order in which to visit the sampled pixels: by pixel id (stable), so neighbouring pixels, which
// share most of their Gaussians, are processed together and their feature rows stay in cache.
at::Tensor pixel_order(const int64_t* pixels, int64_t P, int64_t n_pix) {
    auto order_tensor = at::empty({P}, at::kLong);
    int64_t* order = order_tensor.data_ptr<int64_t>();
    if (n_pix <= 16 * P) {  // counting sort
        std::vector<int64_t> start(n_pix + 1, 0);
        for (int64_t p = 0; p < P; ++p) ++start[pixels[p] + 1];
        for (int64_t i = 0; i < n_pix; ++i) start[i + 1] += start[i];
        for (int64_t p = 0; p < P; ++p) order[start[pixels[p]]++] = p;
    } else {
        std::iota(order, order + P, int64_t(0));
        std::stable_sort(order, order + P, [&](int64_t a, int64_t b) { return pixels[a] < pixels[b]; });
    }
    return order_tensor;
}

// pixel ids must index the table: [0, offsets.numel() - 1)
void check_pixels(const at::Tensor& offsets, const at::Tensor& pixel_ids) {
    const int64_t n_pix = offsets.numel() - 1, P = pixel_ids.numel();
    const int64_t* px = pixel_ids.data_ptr<int64_t>();
    int64_t bad = 0;
    for (int64_t p = 0; p < P; ++p) bad |= (px[p] < 0) | (px[p] >= n_pix);
    TORCH_CHECK_INDEX(bad == 0, "pixel ids must be in [0, ", n_pix, ")");
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> table_gather_cpu(const at::Tensor& offsets, const at::Tensor& gaussian_ids,
                                               const at::Tensor& weights, const at::Tensor& pixel_ids,
                                               const at::Tensor& features) {
    GSSEG_CHECK_CPU(offsets); GSSEG_CHECK_CPU(gaussian_ids); GSSEG_CHECK_CPU(weights);
    GSSEG_CHECK_CPU(pixel_ids); GSSEG_CHECK_CPU(features);
    check_pixels(offsets, pixel_ids);
    const int64_t P = pixel_ids.size(0), D = features.size(1);
    auto out = at::empty({P, D}, features.options());
    auto order = pixel_order(pixel_ids.data_ptr<int64_t>(), P, offsets.numel() - 1);
    AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "table_gather", [&] {
        dispatch_width(D, [&](auto width) {
            gather_impl<scalar_t, decltype(width)::value>(
                offsets.data_ptr<int64_t>(), gaussian_ids.data_ptr<int32_t>(), weights.data_ptr<float>(),
                pixel_ids.data_ptr<int64_t>(), order.data_ptr<int64_t>(), P, features.data_ptr<scalar_t>(), D,
                out.data_ptr<scalar_t>());
        });
    });
    return {out, order};
}

at::Tensor table_scatter_cpu(const at::Tensor& offsets, const at::Tensor& gaussian_ids, const at::Tensor& weights,
                         const at::Tensor& pixel_ids, const at::Tensor& order, const at::Tensor& v_out,
                         int64_t n_gaussians) {
    GSSEG_CHECK_CPU(offsets); GSSEG_CHECK_CPU(gaussian_ids); GSSEG_CHECK_CPU(weights);
    GSSEG_CHECK_CPU(pixel_ids); GSSEG_CHECK_CPU(order); GSSEG_CHECK_CPU(v_out);
    const int64_t P = pixel_ids.size(0), D = v_out.size(1);
    check_pixels(offsets, pixel_ids);
    TORCH_CHECK(order.numel() == P && order.scalar_type() == at::kLong && order.is_contiguous(),
                "order must be table_gather's [P] int64 visiting order");
    const int64_t* ord = order.data_ptr<int64_t>();
    int64_t bad = 0;
    for (int64_t q = 0; q < P; ++q) bad |= (ord[q] < 0) | (ord[q] >= P);
    TORCH_CHECK_INDEX(bad == 0, "order entries must be in [0, ", P, ")");
    // zeroed by the thread that scatters: at::zeros may split the fill over OpenMP threads, and the
    // serial scatter then pulls half the rows from the other core's cache (measured: 0.71 -> 0.39 ms)
    auto v_features = at::empty({n_gaussians, D}, v_out.options());
    std::memset(v_features.data_ptr(), 0, v_features.nbytes());
    AT_DISPATCH_FLOATING_TYPES(v_out.scalar_type(), "table_scatter", [&] {
        dispatch_width(D, [&](auto width) {
            scatter_impl<scalar_t, decltype(width)::value>(
                offsets.data_ptr<int64_t>(), gaussian_ids.data_ptr<int32_t>(), weights.data_ptr<float>(),
                pixel_ids.data_ptr<int64_t>(), ord, P, v_out.data_ptr<scalar_t>(), D,
                v_features.data_ptr<scalar_t>());
        });
    });
    return v_features;
}

}  // namespace gsseg
