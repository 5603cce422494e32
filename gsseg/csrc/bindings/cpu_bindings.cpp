// Python bindings of the C++ CPU rasterizer ops (module built by gsseg.render.extensions).
#include <torch/extension.h>

#include "../cpu/ops.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "gsseg C++ CPU Gaussian rasterizer (OpenMP)";
    m.def("project_forward", &gsseg_cpu::project_forward, "EWA projection (forward)");
    m.def("project_backward", &gsseg_cpu::project_backward, "EWA projection (backward)");
    m.def("isect_tiles", &gsseg_cpu::isect_tiles, "tile binning with per-tile depth order");
    m.def("rasterize_forward", &gsseg_cpu::rasterize_forward, "front-to-back compositing (forward)");
    m.def("rasterize_backward", &gsseg_cpu::rasterize_backward, "front-to-back compositing (backward)");
    m.def("build_table", &gsseg_cpu::build_table, "per-pixel contribution table (CSR)");
    m.def("table_gather", &gsseg_cpu::table_gather, "features of pixels from a contribution table");
    m.def("table_scatter", &gsseg_cpu::table_scatter, "backward of table_gather (scatter-add)");
    m.def("sh_forward", &gsseg_cpu::sh_forward, "spherical harmonics to RGB (forward)");
    m.def("sh_backward", &gsseg_cpu::sh_backward, "spherical harmonics to RGB (backward)");
    m.def("tune_malloc", &gsseg_cpu::tune_malloc, "glibc mmap / trim thresholds (see malloc_tuning.cpp)");
    m.def("pixel_knn_graph", &gsseg_cpu::pixel_knn_graph, "kNN graph over pixel samples, components bridged");
}
