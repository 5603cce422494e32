// Per-pixel contribution tables (CSR): the Gaussians each pixel composites and their weights
// T_i * alpha_i, front to back, truncated by the transmittance stop rule. Camera 0 only. The
// compositing is the forward rasterizer's (tile_rows.h + pixel_lanes.h), so a table holds exactly
// the weights the full render uses.
#include <vector>

#include "utils/cpu.h"
#include "utils/pixel_math.h"
#include "contribution_table/contribution_table.h"
#include "utils/pixel_lanes.h"
#include "utils/tile_rows.h"

namespace gsseg {

namespace {

// Contributions of one tile, pixel by pixel (row-major within the tile).
struct TileContributions {
    std::vector<int32_t> gaussian_ids;
    std::vector<float> weights;
    std::vector<int32_t> counts;  // [tile pixels]
};

template <typename T>
void build_table_impl(const T* means2d, const T* conics, const T* opacities, const int64_t* tile_offsets,
                      const int32_t* flatten_ids, int64_t N, int width, int height, int tile_size,
                      at::Tensor& offsets, at::Tensor& gaussian_ids, at::Tensor& weights) {
    const int tile_w = (width + tile_size - 1) / tile_size, tile_h = (height + tile_size - 1) / tile_size;
    const int64_t n_tiles = (int64_t)tile_w * tile_h, n_pix = (int64_t)width * height;
    std::vector<GaussRecord<T>> records(N);
    make_records(means2d, conics, opacities, 1, N, records.data());
    std::vector<TileContributions> tiles(n_tiles);
#pragma omp parallel num_threads(num_threads())
    {
        TileRows<T> tr;
        RowLanes<T> lanes(tile_size);
        RowBlocks<T> blocks;
        std::vector<std::vector<int32_t>> row_ids(lanes.npad);  // per pixel of the current row
        std::vector<std::vector<float>> row_w(lanes.npad);
#pragma omp for schedule(dynamic, 1)
        for (int64_t tile = 0; tile < n_tiles; ++tile) {
            const int tx0 = (int)(tile % tile_w) * tile_size, ty0 = (int)(tile / tile_w) * tile_size;
            const int npx = std::min(tx0 + tile_size, width) - tx0, npy = std::min(ty0 + tile_size, height) - ty0;
            const int64_t start = tile_offsets[tile], n = tile_offsets[tile + 1] - start;
            const int32_t* ids = flatten_ids + start;
            TileContributions& out = tiles[tile];
            out.counts.assign((size_t)npx * npy, 0);
            tr.build(records.data(), nullptr, ids, n, 0, tx0, ty0, npx, npy);
            lanes.set_columns(tx0, npx);
            for (int r = 0; r < npy; ++r) {
                for (int p = 0; p < npx; ++p) {
                    row_ids[p].clear();
                    row_w[p].clear();
                }
                composite_row(tr, r, T(ty0 + r) + T(0.5), npx, lanes, blocks, [&](int p, int32_t j, T w) {
                    row_ids[p].push_back(ids[tr.entries[j].pos]);
                    row_w[p].push_back((float)w);
                });
                for (int p = 0; p < npx; ++p) {
                    out.counts[(size_t)r * npx + p] = (int32_t)row_ids[p].size();
                    out.gaussian_ids.insert(out.gaussian_ids.end(), row_ids[p].begin(), row_ids[p].end());
                    out.weights.insert(out.weights.end(), row_w[p].begin(), row_w[p].end());
                }
            }
        }
    }
    offsets = at::zeros({n_pix + 1}, at::TensorOptions().dtype(at::kLong));
    int64_t* off = offsets.data_ptr<int64_t>();
    for (int64_t tile = 0; tile < n_tiles; ++tile) {
        const int tx0 = (int)(tile % tile_w) * tile_size, ty0 = (int)(tile / tile_w) * tile_size;
        const int npx = std::min(tx0 + tile_size, width) - tx0;
        const std::vector<int32_t>& counts = tiles[tile].counts;
        for (size_t q = 0; q < counts.size(); ++q)
            off[(int64_t)(ty0 + (int)q / npx) * width + tx0 + (int)q % npx + 1] = counts[q];
    }
    for (int64_t p = 0; p < n_pix; ++p) off[p + 1] += off[p];
    gaussian_ids = at::empty({off[n_pix]}, at::TensorOptions().dtype(at::kInt));
    weights = at::empty({off[n_pix]}, at::TensorOptions().dtype(at::kFloat));
    int32_t* gid = gaussian_ids.data_ptr<int32_t>();
    float* wt = weights.data_ptr<float>();
#pragma omp parallel for schedule(dynamic, 1) num_threads(num_threads())
    for (int64_t tile = 0; tile < n_tiles; ++tile) {
        const int tx0 = (int)(tile % tile_w) * tile_size, ty0 = (int)(tile / tile_w) * tile_size;
        const int npx = std::min(tx0 + tile_size, width) - tx0;
        const TileContributions& src = tiles[tile];
        size_t from = 0;
        for (size_t q = 0; q < src.counts.size(); ++q) {
            const int64_t dst = off[(int64_t)(ty0 + (int)q / npx) * width + tx0 + (int)q % npx];
            std::copy(src.gaussian_ids.begin() + from, src.gaussian_ids.begin() + from + src.counts[q], gid + dst);
            std::copy(src.weights.begin() + from, src.weights.begin() + from + src.counts[q], wt + dst);
            from += src.counts[q];
        }
    }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> build_table_cpu(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size) {
    GSSEG_CHECK_CPU(means2d); GSSEG_CHECK_CPU(conics); GSSEG_CHECK_CPU(opacities);
    GSSEG_CHECK_CPU(tile_offsets); GSSEG_CHECK_CPU(flatten_ids);
    at::Tensor offsets, gaussian_ids, weights;
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "build_table", [&] {
        build_table_impl<scalar_t>(means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(),
                                   opacities.data_ptr<scalar_t>(), tile_offsets.data_ptr<int64_t>(),
                                   flatten_ids.data_ptr<int32_t>(), opacities.size(0), (int)width, (int)height,
                                   (int)tile_size, offsets, gaussian_ids, weights);
    });
    return {offsets, gaussian_ids, weights};
}

}  // namespace gsseg
