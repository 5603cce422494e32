// Small helpers shared by the CPU op files.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/ATen.h>

#define GSSEG_CHECK_CPU(x) TORCH_CHECK((x).device().is_cpu() && (x).is_contiguous(), #x " must be a contiguous CPU tensor")

namespace gsseg {

inline int num_threads() { return at::get_num_threads(); }

template <typename T>
inline void atomic_add(T* dst, T value) {
#pragma omp atomic
    *dst += value;
}

}  // namespace gsseg
