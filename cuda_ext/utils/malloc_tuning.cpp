// glibc allocator settings for the training loop: every step allocates and frees the same
// megabyte-sized tensors (images of channels, per-Gaussian gradients). With glibc's defaults
// those come from fresh mmap()s or a heap top that is trimmed back to the OS after each free, so
// every step page-faults them in again (hundreds of faults, milliseconds of kernel time per
// render). Keeping them in the heap makes later steps reuse the same pages.
#include <limits>

#include "utils/malloc_tuning.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace gsseg {

bool tune_malloc(int64_t mmap_threshold_bytes, int64_t trim_threshold_bytes) {
#if defined(__GLIBC__)
    const int64_t int_max = std::numeric_limits<int>::max();
    if (mmap_threshold_bytes < 0 || mmap_threshold_bytes > int_max || trim_threshold_bytes < 0 ||
        trim_threshold_bytes > int_max)
        return false;
    const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold_bytes) == 1;
    const bool trim_ok = mallopt(M_TRIM_THRESHOLD, (int)trim_threshold_bytes) == 1;
    return mmap_ok && trim_ok;
#else
    (void)mmap_threshold_bytes;
    (void)trim_threshold_bytes;
    return false;
#endif
}

}  // namespace gsseg
