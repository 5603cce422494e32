// Features of sampled pixels from a contribution table (one gather, one weighted sum) and its
// backward (one scatter-add). CPU twin: table_features.cpp. No CUDA twin: on a GPU
// gsseg/render/tables.py gathers with torch ops.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "utils/dispatch.h"

namespace gsseg {

// Features [P,D] of pixels pixel_ids [P] (int64) from a contribution table and features [N,D], and
// the order [P] int64 in which the pixels were visited (table_scatter reuses it).
std::tuple<at::Tensor, at::Tensor> table_gather_cpu(const at::Tensor& offsets, const at::Tensor& gaussian_ids,
                                                   const at::Tensor& weights, const at::Tensor& pixel_ids,
                                                   const at::Tensor& features);

// Backward of table_gather: v_out [P,D] -> v_features [n_gaussians, D] (scatter-add).
at::Tensor table_scatter_cpu(const at::Tensor& offsets, const at::Tensor& gaussian_ids, const at::Tensor& weights,
                             const at::Tensor& pixel_ids, const at::Tensor& order, const at::Tensor& v_out,
                             int64_t n_gaussians);

inline std::tuple<at::Tensor, at::Tensor> table_gather(const at::Tensor& offsets, const at::Tensor& gaussian_ids,
                                                      const at::Tensor& weights, const at::Tensor& pixel_ids,
                                                      const at::Tensor& features) {
    GSSEG_CHECK_NOT_CUDA("table_gather", features);
    return table_gather_cpu(offsets, gaussian_ids, weights, pixel_ids, features);
}

inline at::Tensor table_scatter(const at::Tensor& offsets, const at::Tensor& gaussian_ids, const at::Tensor& weights,
                                const at::Tensor& pixel_ids, const at::Tensor& order, const at::Tensor& v_out,
                                int64_t n_gaussians) {
    GSSEG_CHECK_NOT_CUDA("table_scatter", v_out);
    return table_scatter_cpu(offsets, gaussian_ids, weights, pixel_ids, order, v_out, n_gaussians);
}

}  // namespace gsseg
