// Declarations of the C++ CPU rasterizer ops (tensor-level; bound in bindings/cpu_bindings.cpp).
// All ops take contiguous CPU tensors of one floating dtype (float32 or float64).
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace gsseg_cpu {

// means [N,3], quats [N,4], scales [N,3], opacities [N], viewmats [C,4,4], Ks [C,3,3] ->
// means2d [C,N,2], conics [C,N,3], depths [C,N], radii [C,N,2] int32 (0 = culled).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> project_forward(
    const at::Tensor& means, const at::Tensor& quats, const at::Tensor& scales, const at::Tensor& opacities,
    const at::Tensor& viewmats, const at::Tensor& Ks, int64_t width, int64_t height, double eps2d,
    double near_plane, double far_plane);

// Gradients of project_forward for visible Gaussians -> v_means [N,3], v_quats [N,4], v_scales [N,3].
std::tuple<at::Tensor, at::Tensor, at::Tensor> project_backward(
    const at::Tensor& means, const at::Tensor& quats, const at::Tensor& scales, const at::Tensor& viewmats,
    const at::Tensor& Ks, int64_t width, int64_t height, const at::Tensor& radii, const at::Tensor& conics,
    const at::Tensor& v_means2d, const at::Tensor& v_conics, const at::Tensor& v_depths);

// Tile binning: per camera and 16x16 tile, the visible Gaussians touching it sorted front to
// back (depth, then index). Returns tile_offsets [C*tiles_y*tiles_x + 1] int64 and
// flatten_ids [n_isect] int32 (Gaussian index within its camera).
std::tuple<at::Tensor, at::Tensor> isect_tiles(const at::Tensor& means2d, const at::Tensor& radii,
                                               const at::Tensor& depths, int64_t width, int64_t height,
                                               int64_t tile_size);

// Front-to-back compositing of colors [C,N,K] -> out [C,H,W,K], alpha [C,H,W,1],
// final transmittance [C,H,W] and n_done [C,H,W] int32 (list entries walked up to and
// including the last composited Gaussian), the last two for the backward.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_forward(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& colors,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size);

// Backward of rasterize_forward given v_out [C,H,W,K] and v_alpha [C,H,W,1] ->
// v_means2d [C,N,2], v_conics [C,N,3], v_opacities [N], v_colors [C,N,K].
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_backward(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities, const at::Tensor& colors,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size, const at::Tensor& final_t, const at::Tensor& n_done, const at::Tensor& v_out,
    const at::Tensor& v_alpha);

// Contribution table of camera 0: offsets [H*W+1] int64, gaussian_ids [nnz] int32, weights [nnz] float32.
std::tuple<at::Tensor, at::Tensor, at::Tensor> build_table(
    const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& opacities,
    const at::Tensor& tile_offsets, const at::Tensor& flatten_ids, int64_t width, int64_t height,
    int64_t tile_size);

// Features [P,D] of pixels pixel_ids [P] (int64) from a contribution table and features [N,D], and
// the order [P] int64 in which the pixels were visited (table_scatter reuses it).
std::tuple<at::Tensor, at::Tensor> table_gather(const at::Tensor& offsets, const at::Tensor& gaussian_ids,
                                               const at::Tensor& weights, const at::Tensor& pixel_ids,
                                               const at::Tensor& features);

// Backward of table_gather: v_out [P,D] -> v_features [n_gaussians, D] (scatter-add).
at::Tensor table_scatter(const at::Tensor& offsets, const at::Tensor& gaussian_ids, const at::Tensor& weights,
                         const at::Tensor& pixel_ids, const at::Tensor& order, const at::Tensor& v_out,
                         int64_t n_gaussians);

// Spherical harmonics (degree 0..3): coeffs [N,K,3], dirs [C,N,3] (unnormalised) ->
// rgb [C,N,3] = clamp_min(sum_b basis_b(dir) coeff_b + 0.5, 0).
at::Tensor sh_forward(int64_t degree, const at::Tensor& coeffs, const at::Tensor& dirs);

// Backward of sh_forward -> v_coeffs [N,K,3] (summed over cameras), v_dirs [C,N,3].
std::tuple<at::Tensor, at::Tensor> sh_backward(int64_t degree, const at::Tensor& coeffs, const at::Tensor& dirs,
                                               const at::Tensor& v_rgb);

// kNN graph over samples on a width×height pixel grid: pixel_ids [P] int64 -> (src, dst [E] int64
// with src < dst, each undirected edge once, then n_bridges edges chaining the graph's connected
// components, n_bridges). Every sample is linked to its k nearest others (order: squared distance, index).
std::tuple<at::Tensor, at::Tensor, int64_t> pixel_knn_graph(const at::Tensor& pixel_ids, int64_t width,
                                                            int64_t height, int64_t k);

// glibc only: allocations below mmap_threshold_bytes come from the heap, and the heap is trimmed
// back to the OS only when more than trim_threshold_bytes are free at its top (malloc_tuning.cpp).
// Returns false where the settings do not apply (not glibc, or values glibc rejects).
bool tune_malloc(int64_t mmap_threshold_bytes, int64_t trim_threshold_bytes);

}  // namespace gsseg_cpu
