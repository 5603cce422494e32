// Per-tile work layout of the rasterizer: the depth-sorted Gaussians of one tile that can reach
// one of its pixels, gathered once into an array of small records, plus for every pixel row of
// the tile the (ascending) list of records that may reach that row. A record lists its pixel
// column range [lo, hi) in the tile, so a row touches each record only over those columns.
//
// Reach tests: σ ≥ dy² / (2 Σ2D_yy) over a row and σ ≥ dx² / (2 Σ2D_xx)
// over a column, so a skipped (row, column) can never reach alpha ≥ 1/255 and skipping never
// changes a result; the exact per-pixel tests stay authoritative.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <ATen/Parallel.h>

#include "utils/pixel_math.h"

namespace gsseg {

// Per (camera, Gaussian) data the tiles read, packed in one cache line (for float) and computed
// once per Gaussian rather than once per tile it touches.
template <typename T>
struct alignas(64) GaussRecord {
    T x, y, a, b, c, opacity;  // mean2d, conic, opacity
    T cutoff;                  // gsseg::sigma_cutoff(opacity); < 0: never reaches alpha >= 1/255
    T reach_x, reach_y;  // column / row reach in pixels (see make_records)
};

// records [C*N] of means2d [C,N,2], conics [C,N,3], opacities [N].
template <typename T>
void make_records(const T* means2d, const T* conics, const T* opacities, int64_t C, int64_t N,
                  GaussRecord<T>* records) {
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
    for (int64_t cg = 0; cg < C * N; ++cg) {
        GaussRecord<T>& r = records[cg];
        r.x = means2d[cg * 2];
        r.y = means2d[cg * 2 + 1];
        r.a = conics[cg * 3];
        r.b = conics[cg * 3 + 1];
        r.c = conics[cg * 3 + 2];
        r.opacity = opacities[cg % N];
        r.cutoff = gsseg::sigma_cutoff(r.opacity);
        const T det = r.a * r.c - r.b * r.b;
        const T cov_yy = det > T(0) ? r.a / det : T(0), cov_xx = det > T(0) ? r.c / det : T(0);
        // |dy| > reach_y  =>  σ > cutoff on the whole row (tiny slack for rounding); the same for
        // columns with Σ_xx (the column range is widened by a pixel on each side)
        r.reach_y = std::sqrt(T(2) * r.cutoff * cov_yy * T(1.0001) + T(1e-6));
        r.reach_x = std::sqrt(T(2) * r.cutoff * cov_xx * T(1.0001) + T(1e-6));
    }
}

template <typename T>
struct TileEntry {
    T x, y, a, b, c, opacity, cutoff;  // mean2d, conic, opacity, σ cutoff (gsseg::sigma_cutoff)
    int32_t pos;                       // position in the tile's depth-sorted list
    int32_t lo, hi;                    // tile-relative column range that may be reached
};

// Clamps a floating bound to [0, n] before converting (huge Gaussians have huge reaches; NaN -> 0).
template <typename T>
inline int clamp_index(T v, int n) {
    return !(v > T(0)) ? 0 : (v >= T(n) ? n : (int)v);
}

template <typename T>
struct TileRows {
    std::vector<TileEntry<T>> entries;  // gathered records, ascending list position
    std::vector<T> color;               // [entries, K] channels of the records (when requested)
    std::vector<int32_t> row_start;     // [rows + 1] offsets into row_items
    std::vector<int32_t> row_items;     // record indices per row, ascending
    std::vector<int32_t> ylo, yhi;      // per record: tile-relative row range reached

    // records: make_records of the camera (indexed by Gaussian); ids: [n] Gaussian indices of the
    // tile's list; colors [N, K] of the camera may be null. The tile's pixels are columns
    // [tx0, tx0 + npx) and rows [ty0, ty0 + npy).
    void build(const GaussRecord<T>* records, const T* colors, const int32_t* ids, int64_t n, int64_t K, int tx0,
               int ty0, int npx, int npy) {
        constexpr int64_t kAhead = 8;  // prefetch distance (the list visits Gaussians in random order)
        entries.clear();
        ylo.clear();
        yhi.clear();
        row_start.assign(npy + 2, 0);
        for (int64_t i = 0; i < n; ++i) {
            if (i + kAhead < n) __builtin_prefetch(records + ids[i + kAhead]);
            const GaussRecord<T>& rec = records[ids[i]];
            if (!(rec.cutoff >= T(0))) continue;  // never reaches alpha >= 1/255
            TileEntry<T> e;
            e.x = rec.x;
            e.y = rec.y;
            e.a = rec.a;
            e.b = rec.b;
            e.c = rec.c;
            e.opacity = rec.opacity;
            e.cutoff = rec.cutoff;
            const T centre = e.x - T(tx0) - T(0.5);
            e.lo = clamp_index(std::floor(centre - rec.reach_x) - T(1), npx);
            e.hi = clamp_index(std::ceil(centre + rec.reach_x) + T(2), npx);
            if (e.lo >= e.hi) continue;
            // rows whose centre is within reach_y of the mean (|cy - r| <= ry); the 0.01 px slack
            // only ever adds a row, and the per-pixel tests stay exact
            const T ry = rec.reach_y + T(0.01), cy = e.y - T(ty0) - T(0.5);
            const int first = clamp_index(std::ceil(cy - ry), npy);
            const int last = clamp_index(std::floor(cy + ry) + T(1), npy) - 1;
            if (first > last) continue;
            e.pos = (int32_t)i;
            entries.push_back(e);
            ylo.push_back(first);
            yhi.push_back(last + 1);
            ++row_start[first + 1];  // difference array of the per-row counts
            --row_start[last + 2];
        }
        for (int r = 1; r <= npy; ++r) row_start[r] += row_start[r - 1];  // per-row counts
        for (int r = 1; r <= npy; ++r) row_start[r] += row_start[r - 1];  // offsets
        row_items.resize(row_start[npy]);
        std::vector<int32_t>& cursor = cursor_;
        cursor.assign(row_start.begin(), row_start.end() - 1);
        const int32_t m = (int32_t)entries.size();
        for (int32_t j = 0; j < m; ++j)
            for (int r = ylo[j]; r < yhi[j]; ++r) row_items[cursor[r]++] = j;
        color.resize(colors != nullptr ? (size_t)m * K : 0);
        if (colors != nullptr)
            for (int32_t j = 0; j < m; ++j) {
                if (j + kAhead < m) __builtin_prefetch(colors + (int64_t)ids[entries[j + kAhead].pos] * K);
                const int64_t g = ids[entries[j].pos];
                std::copy(colors + g * K, colors + (g + 1) * K, color.begin() + (int64_t)j * K);
            }
    }

    int32_t size() const { return (int32_t)entries.size(); }
    const int32_t* row_begin(int r) const { return row_items.data() + row_start[r]; }
    const int32_t* row_end(int r) const { return row_items.data() + row_start[r + 1]; }

   private:
    std::vector<int32_t> cursor_;
};

}  // namespace gsseg
