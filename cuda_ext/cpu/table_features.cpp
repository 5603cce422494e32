// Feature rendering from a contribution table for a set of pixels: forward gather + weighted
// sum (parallel over pixels), backward scatter-add into the per-Gaussian features.
#include "common.h"
#include "ops.h"

namespace gsseg_cpu {

namespace {

template <typename T>
void gather_impl(const int64_t* offsets, const int32_t* gids, const float* weights, const int64_t* pixels, int64_t P,
                 const T* features, int64_t D, T* out) {
#pragma omp parallel for schedule(dynamic, 64) num_threads(num_threads())
    for (int64_t p = 0; p < P; ++p) {
        T* o = out + p * D;
        for (int64_t d = 0; d < D; ++d) o[d] = T(0);
        for (int64_t e = offsets[pixels[p]]; e < offsets[pixels[p] + 1]; ++e) {
            const T w = T(weights[e]);
            const T* f = features + (int64_t)gids[e] * D;
#pragma omp simd
            for (int64_t d = 0; d < D; ++d) o[d] += w * f[d];
        }
    }
}

template <typename T>
void scatter_impl(const int64_t* offsets, const int32_t* gids, const float* weights, const int64_t* pixels, int64_t P,
                  const T* v_out, int64_t D, T* v_features) {
    // serial: contributions of different pixels hit the same Gaussians; plain adds beat atomics here
    for (int64_t p = 0; p < P; ++p) {
        const T* g = v_out + p * D;
        for (int64_t e = offsets[pixels[p]]; e < offsets[pixels[p] + 1]; ++e) {
            const T w = T(weights[e]);
            T* f = v_features + (int64_t)gids[e] * D;
#pragma omp simd
            for (int64_t d = 0; d < D; ++d) f[d] += w * g[d];
        }
    }
}

}  // namespace

at::Tensor table_gather(const at::Tensor& offsets, const at::Tensor& gaussian_ids, const at::Tensor& weights,
                        const at::Tensor& pixel_ids, const at::Tensor& features) {
    GSSEG_CHECK_CPU(offsets); GSSEG_CHECK_CPU(gaussian_ids); GSSEG_CHECK_CPU(weights);
    GSSEG_CHECK_CPU(pixel_ids); GSSEG_CHECK_CPU(features);
    const int64_t P = pixel_ids.size(0), D = features.size(1);
    auto out = at::empty({P, D}, features.options());
    AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "table_gather", [&] {
        gather_impl<scalar_t>(offsets.data_ptr<int64_t>(), gaussian_ids.data_ptr<int32_t>(), weights.data_ptr<float>(),
                              pixel_ids.data_ptr<int64_t>(), P, features.data_ptr<scalar_t>(), D,
                              out.data_ptr<scalar_t>());
    });
    return out;
}

at::Tensor table_scatter(const at::Tensor& offsets, const at::Tensor& gaussian_ids, const at::Tensor& weights,
                         const at::Tensor& pixel_ids, const at::Tensor& v_out, int64_t n_gaussians) {
    GSSEG_CHECK_CPU(offsets); GSSEG_CHECK_CPU(gaussian_ids); GSSEG_CHECK_CPU(weights);
    GSSEG_CHECK_CPU(pixel_ids); GSSEG_CHECK_CPU(v_out);
    const int64_t P = pixel_ids.size(0), D = v_out.size(1);
    auto v_features = at::zeros({n_gaussians, D}, v_out.options());
    AT_DISPATCH_FLOATING_TYPES(v_out.scalar_type(), "table_scatter", [&] {
        scatter_impl<scalar_t>(offsets.data_ptr<int64_t>(), gaussian_ids.data_ptr<int32_t>(), weights.data_ptr<float>(),
                               pixel_ids.data_ptr<int64_t>(), P, v_out.data_ptr<scalar_t>(), D,
                               v_features.data_ptr<scalar_t>());
    });
    return v_features;
}

}  // namespace gsseg_cpu
