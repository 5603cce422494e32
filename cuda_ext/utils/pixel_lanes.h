// Compositing one Gaussian record over a block of kLanes adjacent pixels of a tile row at once,
// with GCC/Clang vector types: selects instead of per-pixel branches and a polynomial exp, so a
// record costs a few vector instructions per block (AVX2 when the build enables it, pairs of SSE
// registers otherwise). The rules are those of utils/pixel_math.h (σ test against the record's
// cutoff, alpha cap and floor, stop at transmittance 1e-4 without compositing, back-to-front
// recovery T_i = T_{i+1} / (1 - alpha_i), no gradient through the alpha cap); float exp differs
// from libm's expf by a few ulp, double uses libm's exp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "utils/pixel_math.h"
#include "utils/tile_rows.h"

namespace gsseg {

constexpr int kLanes = 8;
constexpr int kMaxRowPixels = 64;  // widest tile row the lane state holds

template <typename T>
struct LaneTypes;
template <>
struct LaneTypes<float> {
    typedef int32_t index;  // lane integers as wide as the scalar, so masks and selects line up
    typedef float vec __attribute__((vector_size(kLanes * sizeof(float))));
    typedef int32_t mask __attribute__((vector_size(kLanes * sizeof(int32_t))));
};
template <>
struct LaneTypes<double> {
    typedef int64_t index;
    typedef double vec __attribute__((vector_size(kLanes * sizeof(double))));
    typedef int64_t mask __attribute__((vector_size(kLanes * sizeof(int64_t))));
};
template <typename T>
using lanes_t = typename LaneTypes<T>::vec;
template <typename T>
using lane_mask_t = typename LaneTypes<T>::mask;

template <typename V, typename T>
inline V load_lanes(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}
template <typename V, typename T>
inline void store_lanes(T* p, V v) {
    std::memcpy(p, &v, sizeof(V));
}
template <typename T>
inline lanes_t<T> splat(T x) {
    return lanes_t<T>{} + x;
}

// Bit l set where lane l of the mask is set.
template <typename M>
inline unsigned lane_bits(M m) {
    unsigned bits = 0;
    for (int l = 0; l < kLanes; ++l) bits |= unsigned(m[l] != 0) << l;
    return bits;
}
#ifdef __AVX2__
inline unsigned lane_bits(lane_mask_t<float> m) {
    return (unsigned)_mm256_movemask_ps(reinterpret_cast<__m256>(m));
}
#endif

// exp(x) of x <= 0 per lane: x = n·ln2 + r (|r| <= ln2/2, Cody-Waite split of ln2), e^r by its
// degree-7 Taylor polynomial (truncation < 6e-9 relative), 2^n written into the exponent bits;
// x is clamped to [-87, 0] (so no denormals). Relative error ~2e-7.
inline lanes_t<float> exp_nonpositive(lanes_t<float> x) {
    typedef lanes_t<float> V;
    typedef lane_mask_t<float> M;
    x = x < -87.0f ? splat(-87.0f) : x;
    x = x > 0.0f ? V{} : x;
    const float round_magic = 12582912.0f;  // 1.5·2^23: adding and subtracting it rounds to an integer
    const V n = (x * 1.44269504f + round_magic) - round_magic;
    const V r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
    V p = splat(1.0f / 5040.0f);
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const M bits = (__builtin_convertvector(n, M) + 127) << 23;
    return p * (V)bits;
}
inline lanes_t<double> exp_nonpositive(lanes_t<double> x) {
    for (int l = 0; l < kLanes; ++l) x[l] = std::exp(std::min(x[l], 0.0));
    return x;
}

// Per-pixel state of one tile row, padded to a whole number of lane blocks. Padding lanes are
// never live (forward) and have done = 0 (backward), so they never composite.
template <typename T>
struct RowLanes {
    typedef typename LaneTypes<T>::index index_t;
    int npad = 0;
    alignas(64) T fx[kMaxRowPixels];          // pixel-centre x
    alignas(64) T trans[kMaxRowPixels];       // current transmittance
    alignas(64) T live[kMaxRowPixels];        // forward: 1 while the pixel composites, 0 once it stopped
    alignas(64) index_t done[kMaxRowPixels];  // forward: list entries walked; backward: the forward's n_done

    explicit RowLanes(int tile_size) : npad((tile_size + kLanes - 1) / kLanes * kLanes) {
        TORCH_CHECK(tile_size >= 1 && tile_size <= kMaxRowPixels, "tile size must be in [1, ", kMaxRowPixels, "]");
    }
    void set_columns(int tx0, int npx) {
        for (int p = 0; p < npad; ++p) fx[p] = T(tx0 + std::min(p, npx - 1)) + T(0.5);
    }
    // Front-to-back start of a row with npx real pixels.
    void start_forward(int npx) {
        for (int p = 0; p < npad; ++p) {
            trans[p] = T(1);
            live[p] = p < npx ? T(1) : T(0);
            done[p] = 0;
        }
    }
};

// The (record, lane block) pairs of one tile row in row-list (depth) order, with exp(-σ) of every
// lane, 0 where σ is outside [0, cutoff]. These do not depend on the transmittance, so they are
// computed for the whole row first: the exp polynomials of many pairs then overlap in the CPU,
// and the compositing pass that follows is a short chain per block.
template <typename T>
struct RowBlocks {
    std::vector<int32_t> record, block;  // [n] record index in TileRows, lane block
    std::vector<T> vis;                  // [n * kLanes]; pairs whose σ test fails on every lane are left out

    int32_t size() const { return (int32_t)record.size(); }

    // Pairs of the row-list records [first, last) of tile row at pixel-centre y = fy.
    void build(const TileRows<T>& tr, const int32_t* first, const int32_t* last, T fy, const RowLanes<T>& s) {
        typedef lanes_t<T> V;
        record.clear();
        block.clear();
        int64_t n = 0;
        for (const int32_t* it = first; it != last; ++it) {
            const TileEntry<T>& e = tr.entries[*it];
            n += (e.hi + kLanes - 1) / kLanes - e.lo / kLanes;
        }
        vis.resize((size_t)n * kLanes);
        T* out = vis.data();
        for (const int32_t* it = first; it != last; ++it) {
            const TileEntry<T>& e = tr.entries[*it];
            const T dy = e.y - fy;
            for (int b = e.lo / kLanes; b < (e.hi + kLanes - 1) / kLanes; ++b) {
                const V dx = e.x - load_lanes<V>(s.fx + b * kLanes);
                const V sig = gsseg::gaussian_sigma(e.a, e.b, e.c, dx, dy);
                const lane_mask_t<T> pass = (sig <= e.cutoff) & (sig >= T(0));
                if (lane_bits(pass) == 0) continue;  // the record misses every pixel of the block
                store_lanes(out, pass ? exp_nonpositive(-sig) : V{});
                out += kLanes;
                record.push_back(*it);
                block.push_back(b);
            }
        }
    }
};

// Forward: composites record e over lane block b given its exp(-σ) lanes. w[l]
// receives each lane's weight alpha·T (0 where not composited); returns the bits of the lanes
// that composited and adds to *n_stopped the lanes that stopped here.
template <typename T>
inline unsigned forward_lanes(const TileEntry<T>& e, const T* vis_lanes, int b, RowLanes<T>& s, T* w,
                              int* n_stopped) {
    typedef lanes_t<T> V;
    typedef lane_mask_t<T> M;
    const int base = b * kLanes;
    const V trans = load_lanes<V>(s.trans + base), live = load_lanes<V>(s.live + base);
    const V a = e.opacity * load_lanes<V>(vis_lanes);
    const V al = a < T(gsseg::kAlphaMax) ? a : splat(T(gsseg::kAlphaMax));
    const M ok = (live != T(0)) & (al >= T(gsseg::kAlphaMin));
    const V next_t = trans * (T(1) - al);
    const M stop = ok & (next_t <= T(gsseg::kTransmittanceMin));
    const M comp = ok & ~stop;
    store_lanes(w, comp ? al * trans : V{});
    store_lanes(s.trans + base, comp ? next_t : trans);
    store_lanes(s.live + base, stop ? V{} : live);
    store_lanes(s.done + base, comp ? M{} + (e.pos + 1) : load_lanes<M>(s.done + base));
    *n_stopped += __builtin_popcount(lane_bits(stop));
    return lane_bits(comp);
}

// Front-to-back compositing of tile row r (pixel centres at y = fy, npx real pixels): builds the
// row's pairs into blocks, composites them in depth order and calls on_composite(pixel in the
// tile, record index in tr, weight alpha·T) for every composited (pixel, record), so each pixel
// sees its records front to back; stops once every pixel stopped. Leaves the row's final
// transmittances and n_done in lanes. Shared by the forward rasterizer and the table builder.
template <typename T, typename OnComposite>
inline void composite_row(const TileRows<T>& tr, int r, T fy, int npx, RowLanes<T>& lanes, RowBlocks<T>& blocks,
                          OnComposite on_composite) {
    alignas(64) T w[kLanes];
    lanes.start_forward(npx);
    blocks.build(tr, tr.row_begin(r), tr.row_end(r), fy, lanes);
    int n_live = npx;
    for (int32_t i = 0; i < blocks.size() && n_live > 0; ++i) {
        const int32_t j = blocks.record[i];
        const int b = blocks.block[i];
        int n_stopped = 0;
        unsigned bits = forward_lanes(tr.entries[j], blocks.vis.data() + (int64_t)i * kLanes, b, lanes, w, &n_stopped);
        n_live -= n_stopped;
        for (; bits != 0; bits &= bits - 1) {
            const int l = __builtin_ctz(bits);
            on_composite(b * kLanes + l, j, w[l]);
        }
    }
}

// Backward per-pixel state of one tile row besides RowLanes (there: trans = T after the records
// walked so far, done = the forward's n_done).
template <typename T>
struct RowLanesBackward {
    alignas(64) T t_final[kMaxRowPixels];  // final transmittance
    alignas(64) T v_alpha[kMaxRowPixels];  // dL/d(output alpha)
    alignas(64) T buffer[kMaxRowPixels];   // Σ_k v_out_k S_k, S = Σ_{j>i} w_j c_j
    T* v_out_t = nullptr;                  // [K, npad] dL/d(output), channel-major

    RowLanesBackward(int npad, int64_t K) : storage_((size_t)npad * K + 1) { v_out_t = storage_.data(); }

   private:
    std::vector<T> storage_;
};

// Backward of pair (record e, lane block b) given its exp(-σ) lanes, walking back to front: lanes
// whose list position is < done and whose alpha >= 1/255 composited it in the forward. Fills
// w[l] = alpha·T_i (0 elsewhere), recovers T_i into trans, adds the record's gradients
// (v_mean2d 2, v_conic 3, v_opacity 1) to vg and returns the bits of the lanes involved; the
// colour gradient (Σ_l w_l v_out_l) is left to the caller.
template <typename T, int KC>
inline unsigned backward_lanes(const TileEntry<T>& e, T dy, const T* vis_lanes, int b, const T* col, int64_t K,
                               RowLanes<T>& s, RowLanesBackward<T>& sb, T* w, T* vg) {
    typedef lanes_t<T> V;
    typedef lane_mask_t<T> M;
    const int64_t Kc = KC > 0 ? int64_t(KC) : K;
    const int base = b * kLanes;
    const V vis = load_lanes<V>(vis_lanes);
    const V a = e.opacity * vis;
    const V al = a < T(gsseg::kAlphaMax) ? a : splat(T(gsseg::kAlphaMax));
    const M ok = (load_lanes<M>(s.done + base) > e.pos) & (al >= T(gsseg::kAlphaMin));
    const unsigned bits = lane_bits(ok);
    if (bits == 0) return 0;
    const V dx = e.x - load_lanes<V>(s.fx + base);
    const V ra = T(1) / (T(1) - al);
    const V trans = load_lanes<V>(s.trans + base);
    const V t_before = trans * ra;
    const V wv = ok ? al * t_before : V{};
    store_lanes(w, wv);
    // Σ_k v_out_k c_k with four partial sums (independent add chains)
    V d0{}, d1{}, d2{}, d3{};
    const T* vo = sb.v_out_t + base;
    const int64_t np = s.npad;
    int64_t k = 0;
    for (; k + 4 <= Kc; k += 4) {
        d0 += load_lanes<V>(vo + k * np) * col[k];
        d1 += load_lanes<V>(vo + (k + 1) * np) * col[k + 1];
        d2 += load_lanes<V>(vo + (k + 2) * np) * col[k + 2];
        d3 += load_lanes<V>(vo + (k + 3) * np) * col[k + 3];
    }
    for (; k < Kc; ++k) d0 += load_lanes<V>(vo + k * np) * col[k];
    const V dot = (d0 + d1) + (d2 + d3);
    const V buffer = load_lanes<V>(sb.buffer + base);
    // Σ_k v_out_k (c_k T_i - S_k ra) + v_alpha T_final ra, with S updated by this record afterwards
    const V v_al = load_lanes<V>(sb.v_alpha + base) * load_lanes<V>(sb.t_final + base) * ra +
                   (dot * t_before - buffer * ra);
    store_lanes(sb.buffer + base, ok ? buffer + wv * dot : buffer);
    store_lanes(s.trans + base, ok ? t_before : trans);
    const M grad = ok & (a <= T(gsseg::kAlphaMax));  // as gsseg::alpha_backward: none through the cap
    const V v_sigma = grad ? -a * v_al : V{};
    const V g_op = grad ? vis * v_al : V{};
    const V g_c0 = T(0.5) * v_sigma * dx * dx, g_c1 = v_sigma * dx * dy, g_c2 = T(0.5) * v_sigma * dy * dy;
    const V g_m0 = v_sigma * (e.a * dx + e.b * dy), g_m1 = v_sigma * (e.b * dx + e.c * dy);
    T sums[6] = {0, 0, 0, 0, 0, 0};
    for (int l = 0; l < kLanes; ++l) {
        sums[0] += g_m0[l];
        sums[1] += g_m1[l];
        sums[2] += g_c0[l];
        sums[3] += g_c1[l];
        sums[4] += g_c2[l];
        sums[5] += g_op[l];
    }
    for (int q = 0; q < 6; ++q) vg[q] += sums[q];
    return bits;
}

}  // namespace gsseg
