// kNN graph over pixel samples (the Ultrametric Feature Fields objective's per-step graph).
//
// Samples sit on the integer pixel grid, so instead of a k-d tree (slow with the many ties of
// integer coordinates) they are binned into square cells holding ~2 samples each, and every
// sample searches the rings of cells around its own until no closer sample can remain. The
// k nearest are exact under the order (squared distance, sample index). Components of the kNN
// graph are then chained by bridge edges.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "utils/cpu.h"
#include "pixel_knn/pixel_knn.h"

namespace gsseg {

namespace {

int64_t find_root(std::vector<int64_t>& parent, int64_t a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, int64_t> pixel_knn_graph_cpu(const at::Tensor& pixel_ids, int64_t width,
                                                            int64_t height, int64_t k) {
    GSSEG_CHECK_CPU(pixel_ids);
    TORCH_CHECK(pixel_ids.scalar_type() == at::kLong && pixel_ids.dim() == 1, "pixel_ids must be a 1-D int64 tensor");
    TORCH_CHECK(width > 0 && height > 0 && k >= 0, "width, height must be > 0 and k >= 0");
    TORCH_CHECK(width * height < (int64_t(1) << 31) && pixel_ids.size(0) < (int64_t(1) << 31), "image or sample count too large");
    const int64_t n = pixel_ids.size(0);
    const int64_t* ids = pixel_ids.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) TORCH_CHECK(ids[i] >= 0 && ids[i] < width * height, "pixel id out of range");
    k = std::min<int64_t>(k, std::max<int64_t>(n - 1, 0));

    // cells of cs×cs pixels holding ~2 samples at this density; samples binned by cell (stable)
    const double density = n > 0 ? double(n) / double(width * height) : 1.0;
    const int64_t cs = std::max<int64_t>(1, std::llround(std::sqrt(2.0 / density)));
    const int64_t gx = (width + cs - 1) / cs, gy = (height + cs - 1) / cs;
    std::vector<int64_t> xs(n), ys(n), cell(n), start(gx * gy + 1, 0), order(n);
    for (int64_t i = 0; i < n; ++i) {
        xs[i] = ids[i] % width;
        ys[i] = ids[i] / width;
        cell[i] = (ys[i] / cs) * gx + xs[i] / cs;
        ++start[cell[i] + 1];
    }
    std::partial_sum(start.begin(), start.end(), start.begin());
    {
        std::vector<int64_t> fill(start.begin(), start.end() - 1);
        for (int64_t i = 0; i < n; ++i) order[fill[cell[i]]++] = i;
    }

    // coordinates in cell order, so a cell's candidates are read contiguously
    std::vector<int32_t> cell_x(n), cell_y(n);
    for (int64_t s = 0; s < n; ++s) {
        cell_x[s] = int32_t(xs[order[s]]);
        cell_y[s] = int32_t(ys[order[s]]);
    }
    std::vector<int64_t> nbr(n * k);
    std::vector<uint64_t> heap;  // max-heap of (squared distance << 32 | sample): the k best so far
    heap.reserve(k + 1);
    const int64_t max_ring = std::max(gx, gy);
    for (int64_t i = 0; i < n && k > 0; ++i) {
        heap.clear();
        const int64_t cx = xs[i] / cs, cy = ys[i] / cs;
        const int32_t px = int32_t(xs[i]), py = int32_t(ys[i]);
        auto visit = [&](int64_t qx, int64_t qy) {
            if (qx < 0 || qx >= gx || qy < 0 || qy >= gy) return;
            const int64_t q = qy * gx + qx;
            for (int64_t s = start[q]; s < start[q + 1]; ++s) {
                const int64_t j = order[s];
                if (j == i) continue;
                const int64_t dx = cell_x[s] - px, dy = cell_y[s] - py;
                const uint64_t e = (uint64_t(dx * dx + dy * dy) << 32) | uint64_t(j);
                if (int64_t(heap.size()) < k) {
                    heap.push_back(e);
                    std::push_heap(heap.begin(), heap.end());
                } else if (e < heap.front()) {
                    std::pop_heap(heap.begin(), heap.end());
                    heap.back() = e;
                    std::push_heap(heap.begin(), heap.end());
                }
            }
        };
        for (int64_t ring = 0; ring <= max_ring; ++ring) {
            if (ring == 0) {
                visit(cx, cy);
            } else {
                for (int64_t d = -ring; d <= ring; ++d) {
                    visit(cx + d, cy - ring);
                    visit(cx + d, cy + ring);
                }
                for (int64_t d = -ring + 1; d <= ring - 1; ++d) {
                    visit(cx - ring, cy + d);
                    visit(cx + ring, cy + d);
                }
            }
            // every sample in ring + 1 or beyond lies at least ring·cs + 1 pixels away
            const uint64_t bound = uint64_t(ring * cs + 1);
            if (int64_t(heap.size()) == k && (heap.front() >> 32) < bound * bound) break;
        }
        std::sort_heap(heap.begin(), heap.end());
        for (int64_t m = 0; m < k; ++m) nbr[i * k + m] = int64_t(heap[m] & 0xffffffffu);
    }

    // undirected edges, each once: (i, j) from i's list unless j also lists i and j < i
    std::vector<int64_t> src, dst;
    src.reserve(n * k);
    dst.reserve(n * k);
    std::vector<int64_t> parent(n);
    std::iota(parent.begin(), parent.end(), 0);
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t m = 0; m < k; ++m) {
            const int64_t j = nbr[i * k + m];
            const int64_t* lj = &nbr[j * k];
            if (j < i && std::find(lj, lj + k, i) != lj + k) continue;  // already added from j's list
            src.push_back(std::min(i, j));
            dst.push_back(std::max(i, j));
            const int64_t a = find_root(parent, i), b = find_root(parent, j);
            if (a != b) parent[std::max(a, b)] = std::min(a, b);
        }
    }
    // bridges chaining the components (first sample of each component, in order)
    const int64_t n_edges = int64_t(src.size());
    int64_t previous = -1;
    for (int64_t i = 0; i < n; ++i) {
        if (find_root(parent, i) != i) continue;
        if (previous >= 0) {
            src.push_back(previous);
            dst.push_back(i);
        }
        previous = i;
    }
    const int64_t n_bridges = int64_t(src.size()) - n_edges;
    auto opts = at::TensorOptions().dtype(at::kLong);
    at::Tensor src_t = at::empty({int64_t(src.size())}, opts), dst_t = at::empty({int64_t(dst.size())}, opts);
    std::copy(src.begin(), src.end(), src_t.data_ptr<int64_t>());
    std::copy(dst.begin(), dst.end(), dst_t.data_ptr<int64_t>());
    return {src_t, dst_t, n_bridges};
}

}  // namespace gsseg
