// Python bindings of the C++ CPU extension (module gsseg_cpu_ext, built by
// gsseg.render.extensions without CUDA). Every op is bound through its header's dispatcher
// (cuda_ext/<op>/<op>.h), which runs the CPU kernel and rejects CUDA tensors.
#include <torch/extension.h>

#include "contribution_table/contribution_table.h"
#include "label_maps/label_maps.h"
#include "pixel_knn/pixel_knn.h"
#include "projection/projection.h"
#include "rasterize/rasterize.h"
#include "sh/sh.h"
#include "table_features/table_features.h"
#include "tiles/tiles.h"
#include "utils/malloc_tuning.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "gsseg C++ CPU Gaussian rasterizer (OpenMP)";
    m.def("project_forward", &gsseg::project_forward, "EWA projection (forward)");
    m.def("project_backward", &gsseg::project_backward, "EWA projection (backward)");
    m.def("isect_tiles", &gsseg::isect_tiles, "tile binning with per-tile depth order");
    m.def("rasterize_forward", &gsseg::rasterize_forward, "front-to-back compositing (forward)");
    m.def("rasterize_backward", &gsseg::rasterize_backward, "front-to-back compositing (backward)");
    m.def("build_table", &gsseg::build_table, "per-pixel contribution table (CSR)");
    m.def("table_gather", &gsseg::table_gather, "features of pixels from a contribution table");
    m.def("table_scatter", &gsseg::table_scatter, "backward of table_gather (scatter-add)");
    m.def("table_label_argmax", &gsseg::table_label_argmax, "label map: each pixel's heaviest label");
    m.def("sh_forward", &gsseg::sh_forward, "spherical harmonics to RGB (forward)");
    m.def("sh_backward", &gsseg::sh_backward, "spherical harmonics to RGB (backward)");
    m.def("tune_malloc", &gsseg::tune_malloc, "glibc mmap / trim thresholds (see utils/malloc_tuning.cpp)");
    m.def("pixel_knn_graph", &gsseg::pixel_knn_graph, "kNN graph over pixel samples, components bridged");
}
