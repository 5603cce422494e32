// Per-pixel label maps from a contribution table: each pixel takes the label with the largest
// accumulated weight sum(T_i alpha_i) over its Gaussians (ties: the smaller label; no Gaussian: 0).
// CPU twin: label_maps.cpp. No CUDA twin: gsseg/segment/labelmaps.py runs the numpy path on a GPU
// table's copy.
#pragma once

#include <ATen/ATen.h>

#include "utils/dispatch.h"

namespace gsseg {

// offsets [HW+1] int64, gaussian_ids [E] int32, weights [E] float32 (a contribution table) and
// labels [N] int64 (per Gaussian, >= 0) -> [HW] int64 label of each pixel. Weights are summed in
// float64 in entry order, as numpy's bincount does, so the result equals the numpy reference.
at::Tensor table_label_argmax_cpu(const at::Tensor& offsets, const at::Tensor& gaussian_ids, const at::Tensor& weights,
                                  const at::Tensor& labels);

inline at::Tensor table_label_argmax(const at::Tensor& offsets, const at::Tensor& gaussian_ids,
                                     const at::Tensor& weights, const at::Tensor& labels) {
    GSSEG_CHECK_NOT_CUDA("table_label_argmax", weights);
    return table_label_argmax_cpu(offsets, gaussian_ids, weights, labels);
}

}  // namespace gsseg
