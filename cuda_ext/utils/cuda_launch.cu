// Shared host helper of gsseg's CUDA launchers (declared in cuda_launch.h).
#include "utils/cuda_launch.h"
#include "utils/tile_common.cuh"

namespace gsseg {

const char *error_string(int code) {
    return cudaGetErrorString(static_cast<cudaError_t>(code));
}

} // namespace gsseg
