// utils/pixel_math.h — per-Gaussian and per-pixel math shared by the C++ CPU twins
// (cuda_ext/<op>/*.cpp) and the CUDA kernels (cuda_ext/<op>/*.cu). Header-only, no torch, no std
// containers, every function `GSSEG_HD inline` and templated on the scalar type T (float or
// double), so the CPU kernel can also run in float64 for gradchecks.
//
// Conventions (identical to gsplat 1.5, "classic" rasterize mode, pinhole cameras):
//   * Cameras: OpenCV world-to-camera [R|t] (+z forward, +y down); intrinsics fx, fy, cx, cy in
//     pixels. The centre of pixel (x, y) is at (x + 0.5, y + 0.5).
//   * Quaternions are wxyz and unnormalised; they are normalised here. Scales are activated
//     (positive). 3D covariance Σ = R S Sᵀ Rᵀ.
//   * Projection (EWA): mean_c = R·mean + t; Σc = R Σ Rᵀ; culled if z < near (0.01) or z > far.
//     Jacobian J = [[fx/z, 0, -fx·tx/z²], [0, fy/z, -fy·ty/z²]] with tx = z·clamp(x/z, -lim_x_neg,
//     lim_x_pos), lim_x_pos = (W - cx)/fx + 0.3·tan_fovx, lim_x_neg = cx/fx + 0.3·tan_fovx,
//     tan_fovx = 0.5·W/fx (the "1.3 × FoV" clamp; the same for y). Σ2D = J Σc Jᵀ + 0.3·I
//     (low-pass); culled if det(Σ2D) ≤ 0. mean2d = (fx·x/z + cx, fy·y/z + cy).
//     conic = Σ2D⁻¹ stored as (a, b, c) = (inv00, inv01, inv11).
//   * Radii (x/y, as gsplat ≥ 1.5, opacity-aware): culled if opacity < 1/255; extend =
//     min(3.33, sqrt(2·ln(255·opacity))); radius_x = ceil(extend·sqrt(Σ2D_00)), radius_y =
//     ceil(extend·sqrt(Σ2D_11)) (the exact bounding box of the extend-σ ellipse, beyond which
//     alpha < 1/255 anyway); culled if both are 0 or the box lies outside the image.
//   * Pixel evaluation: d = mean2d - pixel_centre; σ = 0.5·(a·dx² + c·dy²) + b·dx·dy;
//     alpha = min(0.999, opacity·exp(-σ)); the Gaussian is skipped if σ < 0 or alpha < 1/255.
//   * Compositing, front to back in depth order, T starts at 1: next_T = T·(1 - alpha); if
//     next_T ≤ 1e-4 the pixel stops and THIS Gaussian is not composited; otherwise its weight is
//     w = alpha·T, out += w·colour, T = next_T. Output alpha = 1 - T_final.
//   * The CUDA kernels apply these rules per pixel with the functions below; the C++ CPU kernel
//     applies the same rules to blocks of 8 pixels of a row at once (utils/pixel_lanes.h: vector
//     selects instead of the early returns, and a polynomial exp accurate to a few float ulp).
//   * Backward (back to front from the last composited Gaussian, as gsplat): T is recovered as
//     T_i = T_{i+1} / (1 - alpha_i); with S = Σ_{j>i} w_j c_j (the "buffer"):
//       dL/dalpha_i = Σ_k v_out_k·(c_ik·T_i - S_k/(1 - alpha_i)) + v_alpha_out·T_final/(1 - alpha_i)
//     and when opacity·exp(-σ) ≤ 0.999 (not clamped): dL/dσ = -opacity·exp(-σ)·dL/dalpha,
//     dL/dopacity = exp(-σ)·dL/dalpha, dL/dconic = dL/dσ·(dx²/2, dx·dy, dy²/2),
//     dL/dmean2d = dL/dσ·(a·dx + b·dy, b·dx + c·dy).
#pragma once

#ifdef __CUDACC__
#define GSSEG_HD __host__ __device__
#else
#define GSSEG_HD
#endif

#include <math.h>

namespace gsseg {

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------
constexpr float kAlphaMax = 0.999f;             // alpha cap
constexpr float kAlphaMin = 1.0f / 255.0f;      // alphas below this are skipped
constexpr float kTransmittanceMin = 1e-4f;      // stop when next_T <= this
constexpr float kNearPlane = 0.01f;
constexpr float kFarPlane = 1e10f;
constexpr float kEps2d = 0.3f;                  // low-pass added to the 2D covariance diagonal
constexpr float kRadiusExtend = 3.33f;          // radius in standard deviations
constexpr int kTileSize = 16;

template <typename T> GSSEG_HD inline T gs_min(T a, T b) { return a < b ? a : b; }
template <typename T> GSSEG_HD inline T gs_max(T a, T b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------------------------
// Per-pixel evaluation and compositing
// ---------------------------------------------------------------------------------------------

// σ of a 2D Gaussian with conic (a, b, c) at offset (dx, dy) = mean2d - pixel centre. V is T,
// or on the CPU a vector of T holding dx of several pixels of one row (utils/pixel_lanes.h).
template <typename T, typename V>
GSSEG_HD inline V gaussian_sigma(T a, T b, T c, V dx, T dy) {
    return T(0.5) * (a * dx * dx + c * dy * dy) + b * dx * dy;
}

// alpha = min(0.999, opacity·exp(-σ)). Returns false when the Gaussian must be skipped at this
// pixel (σ < 0 or alpha < 1/255); *vis receives exp(-σ) for the backward.
template <typename T>
GSSEG_HD inline bool gaussian_alpha(T opacity, T sigma, T* alpha, T* vis) {
    if (sigma < T(0)) return false;
    const T v = exp(-sigma);
    const T al = gs_min(T(kAlphaMax), opacity * v);
    if (al < T(kAlphaMin)) return false;
    *alpha = al;
    *vis = v;
    return true;
}

// A cheap pre-test: for σ > sigma_cutoff(opacity), opacity·exp(-σ) < 1/255 for certain, so the
// Gaussian can be skipped without evaluating exp. The 1e-3 margin leaves the exact alpha test in
// gaussian_alpha authoritative near the boundary, so results are identical with or without it.
template <typename T>
GSSEG_HD inline T sigma_cutoff(T opacity) {
    return opacity > T(0) ? log(opacity / T(kAlphaMin)) + T(1e-3) : T(-1);
}

// One compositing step. Returns false when the pixel stops here (next_T <= 1e-4; the Gaussian
// is then NOT composited); otherwise *weight = alpha·T and *next_T = T·(1 - alpha).
template <typename T>
GSSEG_HD inline bool transmittance_step(T trans, T alpha, T* next_T, T* weight) {
    const T nt = trans * (T(1) - alpha);
    if (nt <= T(kTransmittanceMin)) return false;
    *weight = alpha * trans;
    *next_T = nt;
    return true;
}

// Backward through a composited Gaussian when walking back to front.
// Inputs: trans_after = T_{i+1} (transmittance after this Gaussian), alpha, returns T_i by
// *trans_before and 1/(1-alpha) by *ra. Use with composite_v_alpha_channel for every channel.
template <typename T>
GSSEG_HD inline void transmittance_unstep(T trans_after, T alpha, T* trans_before, T* ra) {
    const T r = T(1) / (T(1) - alpha);
    *ra = r;
    *trans_before = trans_after * r;
}

// Contribution of one channel to dL/dalpha_i: v_out·(c·T_i - S·ra), S = Σ_{j>i} w_j c_j.
template <typename T>
GSSEG_HD inline T composite_v_alpha_channel(T color, T v_out, T buffer, T trans_before, T ra) {
    return v_out * (color * trans_before - buffer * ra);
}

// Contribution of the output alpha (1 - T_final) to dL/dalpha_i.
template <typename T>
GSSEG_HD inline T composite_v_alpha_from_alpha(T v_alpha_out, T trans_final, T ra) {
    return v_alpha_out * trans_final * ra;
}

// dL/dalpha -> dL/dopacity, dL/dconic (a, b, c), dL/dmean2d for one pixel. Gradients are ADDED
// to the outputs. No gradient flows when the alpha cap (0.999) was active.
template <typename T>
GSSEG_HD inline void alpha_backward(T opacity, T a, T b, T c, T dx, T dy, T vis, T v_alpha,
                                    T* v_opacity, T* v_conic, T* v_mean2d) {
    if (opacity * vis > T(kAlphaMax)) return;
    const T v_sigma = -opacity * vis * v_alpha;
    *v_opacity += vis * v_alpha;
    v_conic[0] += T(0.5) * v_sigma * dx * dx;
    v_conic[1] += v_sigma * dx * dy;
    v_conic[2] += T(0.5) * v_sigma * dy * dy;
    v_mean2d[0] += v_sigma * (a * dx + b * dy);
    v_mean2d[1] += v_sigma * (b * dx + c * dy);
}

// ---------------------------------------------------------------------------------------------
// Projection (per Gaussian and camera). Matrices are row-major T[9] (3x3) / T[4] (2x2).
// ---------------------------------------------------------------------------------------------

// Rotation matrix of the normalised wxyz quaternion q.
template <typename T>
GSSEG_HD inline void quat_to_rotmat(const T* q, T* R) {
    const T inv = T(1) / sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    const T w = q[0] * inv, x = q[1] * inv, y = q[2] * inv, z = q[3] * inv;
    R[0] = T(1) - T(2) * (y * y + z * z); R[1] = T(2) * (x * y - w * z); R[2] = T(2) * (x * z + w * y);
    R[3] = T(2) * (x * y + w * z); R[4] = T(1) - T(2) * (x * x + z * z); R[5] = T(2) * (y * z - w * x);
    R[6] = T(2) * (x * z - w * y); R[7] = T(2) * (y * z + w * x); R[8] = T(1) - T(2) * (x * x + y * y);
}

// Backward of quat_to_rotmat: v_R [9] -> v_q [4] (added), including the normalisation.
template <typename T>
GSSEG_HD inline void quat_to_rotmat_backward(const T* q, const T* v_R, T* v_q) {
    const T inv = T(1) / sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    const T w = q[0] * inv, x = q[1] * inv, y = q[2] * inv, z = q[3] * inv;
    const T* g = v_R;
    T vn[4];
    vn[0] = T(2) * (-z * g[1] + y * g[2] + z * g[3] - x * g[5] - y * g[6] + x * g[7]);
    vn[1] = T(2) * (y * g[1] + z * g[2] + y * g[3] - T(2) * x * g[4] - w * g[5] + z * g[6] + w * g[7] -
                    T(2) * x * g[8]);
    vn[2] = T(2) * (-T(2) * y * g[0] + x * g[1] + w * g[2] + x * g[3] + z * g[5] - w * g[6] + z * g[7] -
                    T(2) * y * g[8]);
    vn[3] = T(2) * (-T(2) * z * g[0] - w * g[1] + x * g[2] + w * g[3] - T(2) * z * g[4] + y * g[5] +
                    x * g[6] + y * g[7]);
    const T n[4] = {w, x, y, z};
    const T dot = vn[0] * n[0] + vn[1] * n[1] + vn[2] * n[2] + vn[3] * n[3];
    for (int i = 0; i < 4; ++i) v_q[i] += (vn[i] - dot * n[i]) * inv;
}

// Σ = (R S)(R S)ᵀ from quaternion q [4] and scales s [3]. R [9] is returned for reuse.
template <typename T>
GSSEG_HD inline void quat_scale_to_covar(const T* q, const T* s, T* R, T* cov) {
    quat_to_rotmat(q, R);
    T M[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) M[i * 3 + j] = R[i * 3 + j] * s[j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            cov[i * 3 + j] = M[i * 3 + 0] * M[j * 3 + 0] + M[i * 3 + 1] * M[j * 3 + 1] + M[i * 3 + 2] * M[j * 3 + 2];
}

// Backward of quat_scale_to_covar: v_cov [9] (symmetric) -> v_q [4], v_s [3] (added).
template <typename T>
GSSEG_HD inline void quat_scale_to_covar_backward(const T* q, const T* s, const T* v_cov, T* v_q, T* v_s) {
    T R[9];
    quat_to_rotmat(q, R);
    T M[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) M[i * 3 + j] = R[i * 3 + j] * s[j];
    // v_M = (G + Gᵀ) M
    T vM[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            T acc = T(0);
            for (int k = 0; k < 3; ++k) acc += (v_cov[i * 3 + k] + v_cov[k * 3 + i]) * M[k * 3 + j];
            vM[i * 3 + j] = acc;
        }
    T vR[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) vR[i * 3 + j] = vM[i * 3 + j] * s[j];
    for (int j = 0; j < 3; ++j) v_s[j] += vM[0 * 3 + j] * R[0 * 3 + j] + vM[1 * 3 + j] * R[1 * 3 + j] + vM[2 * 3 + j] * R[2 * 3 + j];
    quat_to_rotmat_backward(q, vR, v_q);
}

// World to camera: viewmat is row-major [4x4] (16 values); mean_c = R mean + t, cov_c = R cov Rᵀ.
template <typename T>
GSSEG_HD inline void world_to_cam(const T* viewmat, const T* mean, const T* cov, T* mean_c, T* cov_c) {
    T R[9] = {viewmat[0], viewmat[1], viewmat[2], viewmat[4], viewmat[5], viewmat[6], viewmat[8], viewmat[9], viewmat[10]};
    for (int i = 0; i < 3; ++i)
        mean_c[i] = R[i * 3] * mean[0] + R[i * 3 + 1] * mean[1] + R[i * 3 + 2] * mean[2] + viewmat[i * 4 + 3];
    T RC[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) RC[i * 3 + j] = R[i * 3] * cov[j] + R[i * 3 + 1] * cov[3 + j] + R[i * 3 + 2] * cov[6 + j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) cov_c[i * 3 + j] = RC[i * 3] * R[j * 3] + RC[i * 3 + 1] * R[j * 3 + 1] + RC[i * 3 + 2] * R[j * 3 + 2];
}

// Backward of world_to_cam w.r.t. mean and cov (the camera is not differentiated).
// v_mean += Rᵀ v_mean_c; v_cov += Rᵀ v_cov_c R.
template <typename T>
GSSEG_HD inline void world_to_cam_backward(const T* viewmat, const T* v_mean_c, const T* v_cov_c, T* v_mean, T* v_cov) {
    T R[9] = {viewmat[0], viewmat[1], viewmat[2], viewmat[4], viewmat[5], viewmat[6], viewmat[8], viewmat[9], viewmat[10]};
    for (int j = 0; j < 3; ++j) v_mean[j] += R[j] * v_mean_c[0] + R[3 + j] * v_mean_c[1] + R[6 + j] * v_mean_c[2];
    T GR[9];  // v_cov_c R
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) GR[i * 3 + j] = v_cov_c[i * 3] * R[j] + v_cov_c[i * 3 + 1] * R[3 + j] + v_cov_c[i * 3 + 2] * R[6 + j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) v_cov[i * 3 + j] += R[i] * GR[j] + R[3 + i] * GR[3 + j] + R[6 + i] * GR[6 + j];
}

// Clamp limits of the perspective Jacobian (1.3 × FoV): lims = {x_pos, x_neg, y_pos, y_neg}.
template <typename T>
GSSEG_HD inline void persp_limits(T fx, T fy, T cx, T cy, int width, int height, T* lims) {
    const T tan_fovx = T(0.5) * T(width) / fx, tan_fovy = T(0.5) * T(height) / fy;
    lims[0] = (T(width) - cx) / fx + T(0.3) * tan_fovx;
    lims[1] = cx / fx + T(0.3) * tan_fovx;
    lims[2] = (T(height) - cy) / fy + T(0.3) * tan_fovy;
    lims[3] = cy / fy + T(0.3) * tan_fovy;
}

// Perspective projection of a camera-space Gaussian: mean2d [2], cov2d [4] (2x2, no low-pass).
template <typename T>
GSSEG_HD inline void persp_proj(const T* mean_c, const T* cov_c, T fx, T fy, T cx, T cy, int width, int height,
                                T* mean2d, T* cov2d) {
    T lims[4];
    persp_limits(fx, fy, cx, cy, width, height, lims);
    const T x = mean_c[0], y = mean_c[1], z = mean_c[2];
    const T rz = T(1) / z, rz2 = rz * rz;
    const T tx = z * gs_min(lims[0], gs_max(-lims[1], x * rz));
    const T ty = z * gs_min(lims[2], gs_max(-lims[3], y * rz));
    const T J[6] = {fx * rz, T(0), -fx * tx * rz2, T(0), fy * rz, -fy * ty * rz2};  // 2x3
    T JC[6];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) JC[i * 3 + j] = J[i * 3] * cov_c[j] + J[i * 3 + 1] * cov_c[3 + j] + J[i * 3 + 2] * cov_c[6 + j];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) cov2d[i * 2 + j] = JC[i * 3] * J[j * 3] + JC[i * 3 + 1] * J[j * 3 + 1] + JC[i * 3 + 2] * J[j * 3 + 2];
    mean2d[0] = fx * x * rz + cx;
    mean2d[1] = fy * y * rz + cy;
}

// Backward of persp_proj: v_cov2d [4] (2x2), v_mean2d [2] -> v_mean_c [3], v_cov_c [9] (added).
template <typename T>
GSSEG_HD inline void persp_proj_backward(const T* mean_c, const T* cov_c, T fx, T fy, T cx, T cy, int width, int height,
                                         const T* v_mean2d, const T* v_cov2d, T* v_mean_c, T* v_cov_c) {
    T lims[4];
    persp_limits(fx, fy, cx, cy, width, height, lims);
    const T x = mean_c[0], y = mean_c[1], z = mean_c[2];
    const T rz = T(1) / z, rz2 = rz * rz, rz3 = rz2 * rz;
    const T xr = x * rz, yr = y * rz;
    const T tx = z * gs_min(lims[0], gs_max(-lims[1], xr));
    const T ty = z * gs_min(lims[2], gs_max(-lims[3], yr));
    const T J[6] = {fx * rz, T(0), -fx * tx * rz2, T(0), fy * rz, -fy * ty * rz2};
    // v_cov_c += Jᵀ G J
    T GJ[6];  // G J : 2x3
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) GJ[i * 3 + j] = v_cov2d[i * 2] * J[j] + v_cov2d[i * 2 + 1] * J[3 + j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) v_cov_c[i * 3 + j] += J[i] * GJ[j] + J[3 + i] * GJ[3 + j];
    // v_J = G J Cᵀ + Gᵀ J C
    T vJ[6];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) {
            T acc = T(0);
            for (int k = 0; k < 3; ++k) {
                const T gj = v_cov2d[i * 2] * J[k] + v_cov2d[i * 2 + 1] * J[3 + k];
                const T gtj = v_cov2d[i] * J[k] + v_cov2d[2 + i] * J[3 + k];
                acc += gj * cov_c[j * 3 + k] + gtj * cov_c[k * 3 + j];
            }
            vJ[i * 3 + j] = acc;
        }
    v_mean_c[0] += fx * rz * v_mean2d[0];
    v_mean_c[1] += fy * rz * v_mean2d[1];
    v_mean_c[2] += -(fx * x * v_mean2d[0] + fy * y * v_mean2d[1]) * rz2;
    // J00 = fx/z, J11 = fy/z, J02 = -fx tx/z², J12 = -fy ty/z²
    v_mean_c[2] += -fx * rz2 * vJ[0] - fy * rz2 * vJ[4];
    if (xr <= lims[0] && xr >= -lims[1]) {
        v_mean_c[0] += -fx * rz2 * vJ[2];
        v_mean_c[2] += T(2) * fx * tx * rz3 * vJ[2];
    } else {
        v_mean_c[2] += fx * tx * rz3 * vJ[2];
    }
    if (yr <= lims[2] && yr >= -lims[3]) {
        v_mean_c[1] += -fy * rz2 * vJ[5];
        v_mean_c[2] += T(2) * fy * ty * rz3 * vJ[5];
    } else {
        v_mean_c[2] += fy * ty * rz3 * vJ[5];
    }
}

// Adds the low-pass to cov2d [4] in place and returns its determinant.
template <typename T>
GSSEG_HD inline T add_blur(T* cov2d, T eps2d) {
    cov2d[0] += eps2d;
    cov2d[3] += eps2d;
    return cov2d[0] * cov2d[3] - cov2d[1] * cov2d[2];
}

// conic (a, b, c) of a 2x2 covariance with determinant det > 0.
template <typename T>
GSSEG_HD inline void covar2d_to_conic(const T* cov2d, T det, T* conic) {
    const T inv = T(1) / det;
    conic[0] = cov2d[3] * inv;
    conic[1] = -cov2d[1] * inv;
    conic[2] = cov2d[0] * inv;
}

// Backward of covar2d_to_conic: v_conic (a, b, c) -> v_cov2d [4] (added). dΣ⁻¹ = -Σ⁻¹ dΣ Σ⁻¹.
template <typename T>
GSSEG_HD inline void covar2d_to_conic_backward(const T* conic, const T* v_conic, T* v_cov2d) {
    const T Ci[4] = {conic[0], conic[1], conic[1], conic[2]};
    const T G[4] = {v_conic[0], T(0.5) * v_conic[1], T(0.5) * v_conic[1], v_conic[2]};
    T GC[4];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) GC[i * 2 + j] = G[i * 2] * Ci[j] + G[i * 2 + 1] * Ci[2 + j];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) v_cov2d[i * 2 + j] -= Ci[i * 2] * GC[j] + Ci[i * 2 + 1] * GC[2 + j];
}

// Opacity-aware x/y radii from the blurred cov2d. Returns false (culled) when the opacity is
// below 1/255, both radii are 0, or the box lies outside the image.
template <typename T>
GSSEG_HD inline bool compute_radii(const T* cov2d_blur, const T* mean2d, T opacity, int width, int height, int* radii) {
    if (opacity < T(kAlphaMin)) return false;
    const T extend = gs_min(T(kRadiusExtend), T(sqrt(T(2) * log(opacity / T(kAlphaMin)))));
    const T rx = ceil(extend * sqrt(cov2d_blur[0]));
    const T ry = ceil(extend * sqrt(cov2d_blur[3]));
    if (rx <= T(0) && ry <= T(0)) return false;
    if (mean2d[0] + rx <= T(0) || mean2d[0] - rx >= T(width) || mean2d[1] + ry <= T(0) || mean2d[1] - ry >= T(height))
        return false;
    radii[0] = int(rx);
    radii[1] = int(ry);
    return true;
}

// Full forward projection of one Gaussian into one camera. viewmat [16] row-major, K = (fx, fy,
// cx, cy). Returns false when culled (then the outputs are untouched and radii must be 0).
template <typename T>
GSSEG_HD inline bool project_gaussian(const T* mean, const T* quat, const T* scale, T opacity, const T* viewmat,
                                      T fx, T fy, T cx, T cy, int width, int height, T eps2d, T near_plane,
                                      T far_plane, T* mean2d, T* conic, T* depth, int* radii) {
    T R[9], cov[9], mean_c[3], cov_c[9], cov2d[4], m2[2];
    quat_scale_to_covar(quat, scale, R, cov);
    world_to_cam(viewmat, mean, cov, mean_c, cov_c);
    if (mean_c[2] < near_plane || mean_c[2] > far_plane) return false;
    persp_proj(mean_c, cov_c, fx, fy, cx, cy, width, height, m2, cov2d);
    const T det = add_blur(cov2d, eps2d);
    if (det <= T(0)) return false;
    int r[2];
    if (!compute_radii(cov2d, m2, opacity, width, height, r)) return false;
    covar2d_to_conic(cov2d, det, conic);
    mean2d[0] = m2[0];
    mean2d[1] = m2[1];
    *depth = mean_c[2];
    radii[0] = r[0];
    radii[1] = r[1];
    return true;
}

// Backward of project_gaussian for a visible Gaussian: v_mean2d [2], v_conic [3], v_depth ->
// v_mean [3], v_quat [4], v_scale [3] (added). `conic` is the forward output.
template <typename T>
GSSEG_HD inline void project_gaussian_backward(const T* mean, const T* quat, const T* scale, const T* viewmat,
                                               T fx, T fy, T cx, T cy, int width, int height, const T* conic,
                                               const T* v_mean2d, const T* v_conic, T v_depth,
                                               T* v_mean, T* v_quat, T* v_scale) {
    T R[9], cov[9], mean_c[3], cov_c[9];
    quat_scale_to_covar(quat, scale, R, cov);
    world_to_cam(viewmat, mean, cov, mean_c, cov_c);
    T v_cov2d[4] = {T(0), T(0), T(0), T(0)};
    covar2d_to_conic_backward(conic, v_conic, v_cov2d);
    T v_mean_c[3] = {T(0), T(0), v_depth};
    T v_cov_c[9] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    persp_proj_backward(mean_c, cov_c, fx, fy, cx, cy, width, height, v_mean2d, v_cov2d, v_mean_c, v_cov_c);
    T v_cov[9] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    world_to_cam_backward(viewmat, v_mean_c, v_cov_c, v_mean, v_cov);
    quat_scale_to_covar_backward(quat, scale, v_cov, v_quat, v_scale);
}

// Tile range [tmin, tmax) covered by a Gaussian's box, clamped to the tile grid (as gsplat).
template <typename T>
GSSEG_HD inline void tile_range(const T* mean2d, const int* radii, int tile_size, int tile_w, int tile_h,
                                int* tmin_x, int* tmin_y, int* tmax_x, int* tmax_y) {
    const T tx = mean2d[0] / T(tile_size), ty = mean2d[1] / T(tile_size);
    const T rx = T(radii[0]) / T(tile_size), ry = T(radii[1]) / T(tile_size);
    *tmin_x = int(gs_min(gs_max(T(0), floor(tx - rx)), T(tile_w)));
    *tmin_y = int(gs_min(gs_max(T(0), floor(ty - ry)), T(tile_h)));
    *tmax_x = int(gs_min(gs_max(T(0), ceil(tx + rx)), T(tile_w)));
    *tmax_y = int(gs_min(gs_max(T(0), ceil(ty + ry)), T(tile_h)));
}

}  // namespace gsseg
