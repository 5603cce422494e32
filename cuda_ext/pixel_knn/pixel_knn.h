// kNN graph over pixel samples of one view (the ultrametric objective's sampling graph).
// CPU twin: pixel_knn.cpp. No CUDA twin.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "utils/dispatch.h"

namespace gsseg {

// kNN graph over samples on a width×height pixel grid: pixel_ids [P] int64 -> (src, dst [E] int64
// with src < dst, each undirected edge once, then n_bridges edges chaining the graph's connected
// components, n_bridges). Every sample is linked to its k nearest others (order: squared distance, index).
std::tuple<at::Tensor, at::Tensor, int64_t> pixel_knn_graph_cpu(const at::Tensor& pixel_ids, int64_t width,
                                                                int64_t height, int64_t k);

inline std::tuple<at::Tensor, at::Tensor, int64_t> pixel_knn_graph(const at::Tensor& pixel_ids, int64_t width,
                                                                   int64_t height, int64_t k) {
    GSSEG_CHECK_NOT_CUDA("pixel_knn_graph", pixel_ids);
    return pixel_knn_graph_cpu(pixel_ids, width, height, k);
}

}  // namespace gsseg
