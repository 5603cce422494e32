// Real spherical harmonics (degree 0..3) -> view-dependent RGB, forward and backward.
// Bases and constants as gsplat / INRIA 3DGS; colour = clamp_min(sum + 0.5, 0).
#include <cmath>

#include "utils/cpu.h"
#include "sh/sh.h"

namespace gsseg {

namespace {

constexpr double kC0 = 0.28209479177387814, kC1 = 0.4886025119029199;
constexpr double kC2[5] = {1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
                           0.5462742152960396};
constexpr double kC3[7] = {-0.5900435899266435, 2.890611442640554,  -0.4570457994644658, 0.3731763325901154,
                           -0.4570457994644658, 1.445305721320277, -0.5900435899266435};

// Basis values b [16] and, when db != nullptr, their gradients db [16][3] at the unit vector (x, y, z).
template <typename T>
inline void sh_bases(int degree, T x, T y, T z, T* b, T (*db)[3]) {
    b[0] = T(kC0);
    if (db) db[0][0] = db[0][1] = db[0][2] = T(0);
    if (degree < 1) return;
    b[1] = T(-kC1) * y; b[2] = T(kC1) * z; b[3] = T(-kC1) * x;
    if (db) {
        db[1][0] = 0; db[1][1] = T(-kC1); db[1][2] = 0;
        db[2][0] = 0; db[2][1] = 0; db[2][2] = T(kC1);
        db[3][0] = T(-kC1); db[3][1] = 0; db[3][2] = 0;
    }
    if (degree < 2) return;
    const T xx = x * x, yy = y * y, zz = z * z;
    const T c20 = T(kC2[0]), c21 = T(kC2[1]), c22 = T(kC2[2]), c23 = T(kC2[3]), c24 = T(kC2[4]);
    b[4] = c20 * x * y; b[5] = c21 * y * z; b[6] = c22 * (T(2) * zz - xx - yy); b[7] = c23 * x * z;
    b[8] = c24 * (xx - yy);
    if (db) {
        db[4][0] = c20 * y; db[4][1] = c20 * x; db[4][2] = 0;
        db[5][0] = 0; db[5][1] = c21 * z; db[5][2] = c21 * y;
        db[6][0] = T(-2) * c22 * x; db[6][1] = T(-2) * c22 * y; db[6][2] = T(4) * c22 * z;
        db[7][0] = c23 * z; db[7][1] = 0; db[7][2] = c23 * x;
        db[8][0] = T(2) * c24 * x; db[8][1] = T(-2) * c24 * y; db[8][2] = 0;
    }
    if (degree < 3) return;
    const T c0 = T(kC3[0]), c1 = T(kC3[1]), c2 = T(kC3[2]), c3 = T(kC3[3]), c4 = T(kC3[4]), c5 = T(kC3[5]),
            c6 = T(kC3[6]);
    b[9] = c0 * y * (T(3) * xx - yy);
    b[10] = c1 * x * y * z;
    b[11] = c2 * y * (T(4) * zz - xx - yy);
    b[12] = c3 * z * (T(2) * zz - T(3) * xx - T(3) * yy);
    b[13] = c4 * x * (T(4) * zz - xx - yy);
    b[14] = c5 * z * (xx - yy);
    b[15] = c6 * x * (xx - T(3) * yy);
    if (db) {
        db[9][0] = T(6) * c0 * x * y; db[9][1] = c0 * (T(3) * xx - T(3) * yy); db[9][2] = 0;
        db[10][0] = c1 * y * z; db[10][1] = c1 * x * z; db[10][2] = c1 * x * y;
        db[11][0] = T(-2) * c2 * x * y; db[11][1] = c2 * (T(4) * zz - xx - T(3) * yy); db[11][2] = T(8) * c2 * y * z;
        db[12][0] = T(-6) * c3 * x * z; db[12][1] = T(-6) * c3 * y * z;
        db[12][2] = c3 * (T(6) * zz - T(3) * xx - T(3) * yy);
        db[13][0] = c4 * (T(4) * zz - T(3) * xx - yy); db[13][1] = T(-2) * c4 * x * y; db[13][2] = T(8) * c4 * x * z;
        db[14][0] = T(2) * c5 * x * z; db[14][1] = T(-2) * c5 * y * z; db[14][2] = c5 * (xx - yy);
        db[15][0] = c6 * (T(3) * xx - T(3) * yy); db[15][1] = T(-6) * c6 * x * y; db[15][2] = 0;
    }
}

template <typename T>
inline void unit(const T* d, T* u, T* inv_norm) {
    const T n2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
    const T inv = n2 > T(0) ? T(1) / std::sqrt(n2) : T(0);
    u[0] = d[0] * inv; u[1] = d[1] * inv; u[2] = d[2] * inv;
    *inv_norm = inv;
}

template <typename T>
void sh_forward_impl(int degree, const T* coeffs, const T* dirs, int64_t C, int64_t N, int64_t K, T* rgb) {
    const int nb = (degree + 1) * (degree + 1);
#pragma omp parallel for schedule(static) num_threads(num_threads())
    for (int64_t idx = 0; idx < C * N; ++idx) {
        const int64_t g = idx % N;
        T u[3], inv, b[16];
        unit(dirs + idx * 3, u, &inv);
        sh_bases<T>(degree, u[0], u[1], u[2], b, nullptr);
        const T* co = coeffs + g * K * 3;
        for (int ch = 0; ch < 3; ++ch) {
            T s = T(0.5);
            for (int j = 0; j < nb; ++j) s += b[j] * co[j * 3 + ch];
            rgb[idx * 3 + ch] = s > T(0) ? s : T(0);
        }
    }
}

template <typename T>
void sh_backward_impl(int degree, const T* coeffs, const T* dirs, const T* v_rgb, int64_t C, int64_t N, int64_t K,
                      T* v_coeffs, T* v_dirs) {
    const int nb = (degree + 1) * (degree + 1);
#pragma omp parallel for schedule(static) num_threads(num_threads())
    for (int64_t g = 0; g < N; ++g) {
        const T* co = coeffs + g * K * 3;
        T* vco = v_coeffs + g * K * 3;
        for (int64_t c = 0; c < C; ++c) {
            const int64_t idx = c * N + g;
            T u[3], inv, b[16], db[16][3];
            unit(dirs + idx * 3, u, &inv);
            sh_bases<T>(degree, u[0], u[1], u[2], b, db);
            T vr[3];
            for (int ch = 0; ch < 3; ++ch) {
                T s = T(0.5);
                for (int j = 0; j < nb; ++j) s += b[j] * co[j * 3 + ch];
                vr[ch] = s > T(0) ? v_rgb[idx * 3 + ch] : T(0);  // clamp_min(., 0) passes where s > 0
            }
            T vu[3] = {T(0), T(0), T(0)};
            for (int j = 0; j < nb; ++j) {
                T vb = T(0);
                for (int ch = 0; ch < 3; ++ch) {
                    vco[j * 3 + ch] += b[j] * vr[ch];
                    vb += co[j * 3 + ch] * vr[ch];
                }
                for (int a = 0; a < 3; ++a) vu[a] += vb * db[j][a];
            }
            const T dot = vu[0] * u[0] + vu[1] * u[1] + vu[2] * u[2];
            for (int a = 0; a < 3; ++a) v_dirs[idx * 3 + a] = (vu[a] - dot * u[a]) * inv;
        }
    }
}

}  // namespace

at::Tensor sh_forward_cpu(int64_t degree, const at::Tensor& coeffs, const at::Tensor& dirs) {
    GSSEG_CHECK_CPU(coeffs); GSSEG_CHECK_CPU(dirs);
    TORCH_CHECK(degree >= 0 && degree <= 3, "sh degree must be in 0..3");
    TORCH_CHECK(coeffs.size(1) >= (degree + 1) * (degree + 1), "not enough SH coefficients for the degree");
    const int64_t C = dirs.size(0), N = dirs.size(1), K = coeffs.size(1);
    auto rgb = at::empty({C, N, 3}, dirs.options());
    AT_DISPATCH_FLOATING_TYPES(dirs.scalar_type(), "sh_forward", [&] {
        sh_forward_impl<scalar_t>((int)degree, coeffs.data_ptr<scalar_t>(), dirs.data_ptr<scalar_t>(), C, N, K,
                                  rgb.data_ptr<scalar_t>());
    });
    return rgb;
}

std::tuple<at::Tensor, at::Tensor> sh_backward_cpu(int64_t degree, const at::Tensor& coeffs, const at::Tensor& dirs,
                                               const at::Tensor& v_rgb) {
    GSSEG_CHECK_CPU(coeffs); GSSEG_CHECK_CPU(dirs); GSSEG_CHECK_CPU(v_rgb);
    const int64_t C = dirs.size(0), N = dirs.size(1), K = coeffs.size(1);
    auto v_coeffs = at::zeros_like(coeffs);
    auto v_dirs = at::empty_like(dirs);
    AT_DISPATCH_FLOATING_TYPES(dirs.scalar_type(), "sh_backward", [&] {
        sh_backward_impl<scalar_t>((int)degree, coeffs.data_ptr<scalar_t>(), dirs.data_ptr<scalar_t>(),
                                   v_rgb.data_ptr<scalar_t>(), C, N, K, v_coeffs.data_ptr<scalar_t>(),
                                   v_dirs.data_ptr<scalar_t>());
    });
    return {v_coeffs, v_dirs};
}

}  // namespace gsseg
