// Label maps from a contribution table (parallel over pixels). A pixel's (label, weight) pairs are
// summed per label in entry order: by a linear scan while the pixel has few distinct labels, else
// after a stable sort by label (which keeps each label's entries in entry order).
#include <algorithm>
#include <utility>
#include <vector>

#include "label_maps/label_maps.h"
#include "utils/cpu.h"

namespace gsseg {

namespace {

constexpr size_t kLinearLabels = 32;  // distinct labels per pixel up to which a linear scan is used

int64_t best_label(std::vector<std::pair<int64_t, double>>& acc) {
    int64_t best = 0;
    double best_w = -1.0;
    for (const auto& [label, w] : acc)
        if (w > best_w || (w == best_w && label < best)) best = label, best_w = w;
    return best;
}

}  // namespace

at::Tensor table_label_argmax_cpu(const at::Tensor& offsets, const at::Tensor& gaussian_ids, const at::Tensor& weights,
                                  const at::Tensor& labels) {
    TORCH_CHECK(offsets.dtype() == at::kLong && gaussian_ids.dtype() == at::kInt && weights.dtype() == at::kFloat &&
                    labels.dtype() == at::kLong,
                "table_label_argmax: expected int64 offsets, int32 ids, float32 weights, int64 labels");
    TORCH_CHECK(offsets.is_contiguous() && gaussian_ids.is_contiguous() && weights.is_contiguous() &&
                    labels.is_contiguous(),
                "table_label_argmax: tensors must be contiguous");
    TORCH_CHECK(offsets.dim() == 1 && offsets.numel() >= 1, "table_label_argmax: offsets must be [HW+1]");
    const int64_t n_pix = offsets.numel() - 1, n = labels.numel();
    TORCH_CHECK(gaussian_ids.numel() == weights.numel(), "table_label_argmax: ids and weights differ in length");
    const int64_t* off = offsets.data_ptr<int64_t>();
    const int32_t* gids = gaussian_ids.data_ptr<int32_t>();
    const float* w = weights.data_ptr<float>();
    const int64_t* lab = labels.data_ptr<int64_t>();
    TORCH_CHECK(off[n_pix] == gaussian_ids.numel(), "table_label_argmax: offsets do not end at the entry count");
    at::Tensor out = at::zeros({n_pix}, offsets.options());
    int64_t* o = out.data_ptr<int64_t>();
    bool bad_id = false;
#pragma omp parallel num_threads(num_threads()) reduction(|| : bad_id)
    {
        std::vector<std::pair<int64_t, double>> acc, entries;
#pragma omp for schedule(dynamic, 256)
        for (int64_t p = 0; p < n_pix; ++p) {
            const int64_t e0 = off[p], e1 = off[p + 1];
            if (e0 == e1) continue;
            acc.clear();
            bool linear = true;
            for (int64_t e = e0; e < e1 && linear; ++e) {
                const int64_t g = gids[e];
                if (g < 0 || g >= n) {
                    bad_id = true;
                    linear = false;
                    break;
                }
                const int64_t l = lab[g];
                auto it = std::find_if(acc.begin(), acc.end(), [l](const auto& a) { return a.first == l; });
                if (it != acc.end()) {
                    it->second += (double)w[e];
                } else if (acc.size() < kLinearLabels) {
                    acc.emplace_back(l, (double)w[e]);
                } else {
                    linear = false;
                }
            }
            if (bad_id) continue;
            if (!linear) {  // many labels: sort the pixel's entries by label, then sum runs
                entries.clear();
                for (int64_t e = e0; e < e1; ++e) {
                    const int64_t g = gids[e];
                    bad_id = bad_id || g < 0 || g >= n;
                    entries.emplace_back(g < 0 || g >= n ? 0 : lab[g], (double)w[e]);
                }
                std::stable_sort(entries.begin(), entries.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; });
                acc.clear();
                for (const auto& [l, x] : entries) {
                    if (acc.empty() || acc.back().first != l) acc.emplace_back(l, 0.0);
                    acc.back().second += x;
                }
            }
            o[p] = best_label(acc);
        }
    }
    TORCH_CHECK(!bad_id, "table_label_argmax: a Gaussian id is outside the labels");
    return out;
}

}  // namespace gsseg
