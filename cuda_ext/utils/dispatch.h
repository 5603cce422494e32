// The device check of the op headers' dispatchers (PyTorch3D's csrc/<op>/<op>.h pattern):
// `<op>` runs `<op>_cpu` for CPU tensors and `<op>_cuda` for CUDA tensors where the translation
// unit is built with GSSEG_WITH_CUDA; otherwise a CUDA tensor is an error that says so.
// The CPU extension (bindings_cpu.cpp, built without CUDA) binds the dispatchers. The CUDA
// extension (bindings_cuda.cpp, which defines GSSEG_WITH_CUDA) holds no CPU twins and binds the
// `_cuda` twins under the same Python names.
#pragma once

#include <ATen/ATen.h>

#define GSSEG_CHECK_NOT_CUDA(op, x)                                                                      \
    TORCH_CHECK(!(x).is_cuda(), op ": gsseg's C++ extension was built without CUDA; CUDA tensors go to " \
                                   "the gsseg_cuda_ext module (gsseg.render.cuda_extension)")
