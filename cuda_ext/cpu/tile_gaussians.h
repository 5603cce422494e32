// Per-tile gather of the depth-sorted Gaussians a tile touches into contiguous arrays
// (structure of arrays, so σ of a block of entries vectorises), plus a per-row selection:
// the entries that can reach alpha >= 1/255 somewhere on one pixel row. The row test uses
// min over dx of σ = dy² / (2 Σ2D_yy), so skipping an entry never changes a result.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gsseg/pixel_math.h"

namespace gsseg_cpu {

constexpr int64_t kBlock = 32;  // entries whose σ is evaluated together

template <typename T>
struct TileGaussians {
    // whole tile list, in depth order
    std::vector<T> mx, my, ca, cb, cc, opacity, cutoff, reach_y2, reach_x;
    std::vector<T> color;  // [n, K]
    // current row: list positions (ascending) and SoA copies of the selected entries
    std::vector<int32_t> row_pos;
    std::vector<T> rx, ry, ra, rb, rc, rop, rcut;
    std::vector<int> rlo, rhi;  // pixel range [rlo, rhi) of the row (relative to the tile) each entry may reach

    // ids: [n] Gaussian indices of the tile's list; cam_offset = camera * N. colors may be null.
    void gather(const T* means2d, const T* conics, const T* opacities, const T* colors, const int32_t* ids, int64_t n,
                int64_t K, int64_t cam_offset) {
        for (auto* v : {&mx, &my, &ca, &cb, &cc, &opacity, &cutoff, &reach_y2, &reach_x}) v->resize(n);
        color.resize(colors != nullptr ? n * K : 0);
        for (int64_t i = 0; i < n; ++i) {
            const int64_t g = ids[i], cg = cam_offset + g;
            mx[i] = means2d[cg * 2];
            my[i] = means2d[cg * 2 + 1];
            ca[i] = conics[cg * 3];
            cb[i] = conics[cg * 3 + 1];
            cc[i] = conics[cg * 3 + 2];
            opacity[i] = opacities[g];
            cutoff[i] = gsseg::sigma_cutoff(opacity[i]);
            const T det = ca[i] * cc[i] - cb[i] * cb[i];
            const T cov_yy = det > T(0) ? ca[i] / det : T(0), cov_xx = det > T(0) ? cc[i] / det : T(0);
            // dy² > 2·cutoff·Σ_yy  =>  σ > cutoff at every pixel of the row (tiny slack for rounding);
            // the same for columns with Σ_xx (the column range is widened by a pixel on each side)
            reach_y2[i] = cutoff[i] >= T(0) ? T(2) * cutoff[i] * cov_yy * T(1.0001) + T(1e-6) : T(-1);
            reach_x[i] = cutoff[i] >= T(0) ? std::sqrt(T(2) * cutoff[i] * cov_xx * T(1.0001) + T(1e-6)) : T(-1);
            if (colors != nullptr) std::copy(colors + cg * K, colors + (cg + 1) * K, color.begin() + i * K);
        }
    }

    // Selects the entries that may contribute on the pixel row whose centres have y = fy, for
    // the npx pixels of the tile starting at column tx0.
    void select_row(T fy, int tx0, int npx) {
        const int64_t n = (int64_t)mx.size();
        row_pos.clear();
        rlo.clear();
        rhi.clear();
        for (int64_t i = 0; i < n; ++i) {
            const T dy = my[i] - fy;
            if (!(dy * dy <= reach_y2[i])) continue;
            const T centre = mx[i] - T(tx0) - T(0.5);
            // clamp in floating point before converting: huge Gaussians have huge reaches
            const T lo_f = std::floor(centre - reach_x[i]) - T(1), hi_f = std::ceil(centre + reach_x[i]) + T(2);
            const int lo = lo_f <= T(0) ? 0 : (lo_f >= T(npx) ? npx : (int)lo_f);
            const int hi = hi_f <= T(0) ? 0 : (hi_f >= T(npx) ? npx : (int)hi_f);
            if (lo >= hi) continue;
            row_pos.push_back((int32_t)i);
            rlo.push_back(lo);
            rhi.push_back(hi);
        }
        const int64_t m = (int64_t)row_pos.size();
        for (auto* v : {&rx, &ry, &ra, &rb, &rc, &rop, &rcut}) v->resize(m);
        for (int64_t j = 0; j < m; ++j) {
            const int32_t i = row_pos[j];
            rx[j] = mx[i]; ry[j] = my[i]; ra[j] = ca[i]; rb[j] = cb[i]; rc[j] = cc[i];
            rop[j] = opacity[i]; rcut[j] = cutoff[i];
        }
    }

    int64_t row_size() const { return (int64_t)row_pos.size(); }

    // σ of row entries [lo, lo + m) at pixel centre (fx, fy) into out[0..m); same arithmetic as
    // gsseg::gaussian_sigma, so values are bit-identical to the scalar path.
    inline void sigma_block(int64_t lo, int64_t m, T fx, T fy, T* out) const {
        const T *x = rx.data() + lo, *y = ry.data() + lo, *a = ra.data() + lo, *b = rb.data() + lo,
                *c = rc.data() + lo;
        for (int64_t j = 0; j < m; ++j) {
            const T dx = x[j] - fx, dy = y[j] - fy;
            out[j] = T(0.5) * (a[j] * dx * dx + c[j] * dy * dy) + b[j] * dx * dy;
        }
    }
};

}  // namespace gsseg_cpu
