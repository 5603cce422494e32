// glibc allocator settings for the training loop (malloc_tuning.cpp). Not an op: host only.
#pragma once

#include <cstdint>

namespace gsseg {

// glibc only: allocations below mmap_threshold_bytes come from the heap, and the heap is trimmed
// back to the OS only when more than trim_threshold_bytes are free at its top.
// Returns false where the settings do not apply (not glibc, or values glibc rejects).
bool tune_malloc(int64_t mmap_threshold_bytes, int64_t trim_threshold_bytes);

}  // namespace gsseg
