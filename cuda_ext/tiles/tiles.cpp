// Tile binning: which visible Gaussians touch each 16x16 tile, sorted front to back.
// Per camera the visible Gaussians are sorted once by depth (stable LSD radix sort on the float
// bits, so ties stay in index order) and then dealt out to their tiles in that order; every
// tile's list comes out sorted by (depth, index) without a per-tile sort.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "utils/cpu.h"
#include "utils/pixel_math.h"
#include "tiles/tiles.h"

namespace gsseg {

namespace {

// Unsigned key with the order of the floating value (-0 and +0 give the same key; no NaN here:
// culled Gaussians are never sorted).
template <typename T>
inline typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type order_key(T v) {
    using U = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;
    v = v + T(0);  // -0 -> +0
    U bits;
    std::memcpy(&bits, &v, sizeof(T));
    const U sign = U(1) << (sizeof(T) * 8 - 1);
    return (bits & sign) ? ~bits : (bits | sign);
}

// Stable sort of ids [n] by keys [n] (both permuted in place), 8 bits per pass.
template <typename U>
void radix_sort(std::vector<U>& keys, std::vector<int32_t>& ids) {
    const size_t n = keys.size();
    std::vector<U> keys2(n);
    std::vector<int32_t> ids2(n);
    for (size_t shift = 0; shift < sizeof(U) * 8; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; ++i) ++count[((keys[i] >> shift) & 0xff) + 1];
        if (count[((keys.empty() ? 0 : (keys[0] >> shift) & 0xff)) + 1] == n) continue;  // one digit only
        for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
        for (size_t i = 0; i < n; ++i) {
            const size_t dst = count[(keys[i] >> shift) & 0xff]++;
            keys2[dst] = keys[i];
            ids2[dst] = ids[i];
        }
        keys.swap(keys2);
        ids.swap(ids2);
    }
}

template <typename T>
void isect_impl(const T* means2d, const int32_t* radii, const T* depths, int64_t C, int64_t N, int tile_size,
                int tile_w, int tile_h, at::Tensor& tile_offsets, at::Tensor& flatten_ids) {
    using U = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;
    const int64_t n_tiles = (int64_t)tile_w * tile_h;
    std::vector<int64_t> counts(C * n_tiles + 1, 0);
    for (int64_t idx = 0; idx < C * N; ++idx) {
        if (radii[idx * 2] <= 0 || radii[idx * 2 + 1] <= 0) continue;
        int x0, y0, x1, y1;
        gsseg::tile_range(means2d + idx * 2, radii + idx * 2, tile_size, tile_w, tile_h, &x0, &y0, &x1, &y1);
        const int64_t base = (idx / N) * n_tiles;
        for (int ty = y0; ty < y1; ++ty)
            for (int tx = x0; tx < x1; ++tx) counts[base + (int64_t)ty * tile_w + tx + 1] += 1;
    }
    for (int64_t i = 0; i < C * n_tiles; ++i) counts[i + 1] += counts[i];
    tile_offsets = at::empty({C * n_tiles + 1}, at::TensorOptions().dtype(at::kLong));
    std::copy(counts.begin(), counts.end(), tile_offsets.data_ptr<int64_t>());
    flatten_ids = at::empty({counts.back()}, at::TensorOptions().dtype(at::kInt));
    int32_t* ids = flatten_ids.data_ptr<int32_t>();
    std::vector<int64_t> cursor(counts.begin(), counts.end() - 1);
    std::vector<U> keys;
    std::vector<int32_t> order;
    for (int64_t c = 0; c < C; ++c) {
        keys.clear();
        order.clear();
        for (int64_t g = 0; g < N; ++g) {  // ascending index: the stable sort keeps ties in index order
            const int64_t idx = c * N + g;
            if (radii[idx * 2] <= 0 || radii[idx * 2 + 1] <= 0) continue;
            keys.push_back(order_key(depths[idx]));
            order.push_back((int32_t)g);
        }
        radix_sort(keys, order);
        const int64_t base = c * n_tiles;
        for (const int32_t g : order) {
            const int64_t idx = c * N + g;
            int x0, y0, x1, y1;
            gsseg::tile_range(means2d + idx * 2, radii + idx * 2, tile_size, tile_w, tile_h, &x0, &y0, &x1, &y1);
            for (int ty = y0; ty < y1; ++ty)
                for (int tx = x0; tx < x1; ++tx) ids[cursor[base + (int64_t)ty * tile_w + tx]++] = g;
        }
    }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> isect_tiles_cpu(const at::Tensor& means2d, const at::Tensor& radii,
                                               const at::Tensor& depths, int64_t width, int64_t height,
                                               int64_t tile_size) {
    GSSEG_CHECK_CPU(means2d); GSSEG_CHECK_CPU(radii); GSSEG_CHECK_CPU(depths);
    const int64_t C = means2d.size(0), N = means2d.size(1);
    const int tile_w = (int)((width + tile_size - 1) / tile_size), tile_h = (int)((height + tile_size - 1) / tile_size);
    at::Tensor tile_offsets, flatten_ids;
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "isect_tiles", [&] {
        isect_impl<scalar_t>(means2d.data_ptr<scalar_t>(), radii.data_ptr<int32_t>(), depths.data_ptr<scalar_t>(), C,
                             N, (int)tile_size, tile_w, tile_h, tile_offsets, flatten_ids);
    });
    return {tile_offsets, flatten_ids};
}

}  // namespace gsseg
