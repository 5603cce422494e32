// Host emulation of the CUDA features gsseg's kernels use, so the very same .cu files can be
// compiled by a plain C++ compiler (-x c++ -DGSSEG_HOST_EMULATION) and run on a CPU in tests
// on machines without a GPU. Not used by the real build.
//
// Each CUDA thread of a block is a cooperative fiber (ucontext) on the calling OS thread;
// blocks run one after another. __syncthreads* waits for every thread of the block and the
// warp intrinsics (__shfl_xor_sync, __any_sync) for all 32 lanes of the warp, exactly as a
// full-mask intrinsic on the GPU, so divergent barriers show up as a reported deadlock.
// Dynamic shared memory is filled with 0xFF bytes (NaN floats, -1 ints) to expose reads of
// slots nobody wrote. Launches check the block size (<= 1024) and dynamic shared memory
// (<= 48 KiB, the limit without an opt-in attribute).
#pragma once

#ifndef GSSEG_HOST_EMULATION
#error "host_emulation.cuh is only for -DGSSEG_HOST_EMULATION builds"
#endif

#include <ucontext.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

typedef void *cudaStream_t;
enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorInvalidConfiguration = 9,
};

inline int32_t min(int32_t a, int32_t b) { return a < b ? a : b; }
inline int32_t max(int32_t a, int32_t b) { return a > b ? a : b; }

namespace gsseg::emu {

enum class Wait { kNone, kBlock, kWarp, kDone };
enum class WarpOp { kShflXor, kAny };

struct Fiber {
    ucontext_t ctx;
    unsigned char *stack = nullptr;
    dim3 tid;
    Wait wait = Wait::kNone;
    WarpOp op = WarpOp::kShflXor;
    uint32_t value = 0;  // posted operand (bits of a float or an int)
    int32_t arg = 0;     // xor lane mask
    uint32_t result = 0; // filled by the scheduler on release
};

struct BlockRun {
    dim3 block_idx, block_dim, grid_dim;
    std::vector<Fiber> fibers;
    std::vector<unsigned char> shared;
    ucontext_t scheduler;
    int current = -1;
    std::function<void()> body;
};

struct Emulator {
    BlockRun *run = nullptr;
    cudaError_t last_error = cudaSuccess;
};

inline Emulator &emulator() {
    static Emulator e;
    return e;
}

inline BlockRun &block() { return *emulator().run; }
inline Fiber &self() { return block().fibers[block().current]; }

inline void yield_to_scheduler() {
    BlockRun &b = block();
    swapcontext(&b.fibers[b.current].ctx, &b.scheduler);
}

inline void fiber_entry() {
    block().body();
    self().wait = Wait::kDone;
    yield_to_scheduler();
}

inline int32_t rank_of(const BlockRun &b, const Fiber &f) {
    return static_cast<int32_t>((f.tid.z * b.block_dim.y + f.tid.y) * b.block_dim.x + f.tid.x);
}

// Releases every warp whose live lanes all wait on a warp intrinsic. Returns true if any.
inline bool release_warps(BlockRun &b) {
    bool released = false;
    const int n = static_cast<int>(b.fibers.size());
    for (int w0 = 0; w0 < n; w0 += 32) {
        const int w1 = w0 + 32 < n ? w0 + 32 : n;
        bool all = true, any_live = false;
        for (int i = w0; i < w1; ++i) {
            if (b.fibers[i].wait == Wait::kDone) {
                continue;
            }
            any_live = true;
            all = all && b.fibers[i].wait == Wait::kWarp;
        }
        if (!all || !any_live) {
            continue;
        }
        if (w1 - w0 != 32) {
            std::fprintf(stderr, "host emulation: warp intrinsic in a partial warp\n");
            std::abort();
        }
        const WarpOp op = b.fibers[w0].op;
        uint32_t any = 0;
        for (int i = w0; i < w1; ++i) {
            if (b.fibers[i].wait != Wait::kWarp || b.fibers[i].op != op) {
                std::fprintf(stderr, "host emulation: lanes of one warp reached different intrinsics\n");
                std::abort();
            }
            any |= b.fibers[i].value != 0 ? 1u : 0u;
        }
        for (int i = w0; i < w1; ++i) {
            Fiber &f = b.fibers[i];
            if (op == WarpOp::kShflXor) {
                const int src = w0 + ((i - w0) ^ f.arg);
                f.result = b.fibers[src].value;
            } else {
                f.result = any;
            }
            f.wait = Wait::kNone;
        }
        released = true;
    }
    return released;
}

// Releases a block barrier once every live thread waits on it. Returns true if released.
inline bool release_block(BlockRun &b) {
    uint32_t count = 0;
    bool any_live = false;
    for (const Fiber &f : b.fibers) {
        if (f.wait == Wait::kDone) {
            continue;
        }
        any_live = true;
        if (f.wait != Wait::kBlock) {
            return false;
        }
        count += f.value != 0 ? 1u : 0u;
    }
    if (!any_live) {
        return false;
    }
    for (Fiber &f : b.fibers) {
        if (f.wait == Wait::kBlock) {
            f.result = count;
            f.wait = Wait::kNone;
        }
    }
    return true;
}

constexpr size_t kFiberStackBytes = 64 * 1024;

inline void run_block(BlockRun &b) {
    for (size_t i = 0; i < b.fibers.size(); ++i) {
        Fiber &f = b.fibers[i];
        f.wait = Wait::kNone;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = kFiberStackBytes;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, fiber_entry, 0);
    }
    for (;;) {
        bool ran = false;
        for (size_t i = 0; i < b.fibers.size(); ++i) {
            if (b.fibers[i].wait == Wait::kNone) {
                b.current = static_cast<int>(i);
                swapcontext(&b.scheduler, &b.fibers[i].ctx);
                ran = true;
            }
        }
        bool all_done = true;
        for (const Fiber &f : b.fibers) {
            all_done = all_done && f.wait == Wait::kDone;
        }
        if (all_done) {
            return;
        }
        const bool released = release_warps(b) || release_block(b);
        if (!ran && !released) {
            std::fprintf(stderr, "host emulation: deadlock in block (%u,%u,%u)\n", b.block_idx.x,
                         b.block_idx.y, b.block_idx.z);
            std::abort();
        }
    }
}

template <typename... KArgs>
struct Launcher {
    dim3 grid, threads;
    size_t shmem;
    void (*kernel)(KArgs...);

    template <typename... Args>
    void operator()(Args &&...args) const {
        Emulator &e = emulator();
        const unsigned long n_threads = static_cast<unsigned long>(threads.x) * threads.y * threads.z;
        if (n_threads == 0 || n_threads > 1024 || shmem > 48 * 1024 || grid.x == 0 || grid.y == 0 ||
            grid.z == 0 || grid.y > 65535 || grid.z > 65535) {
            e.last_error = cudaErrorInvalidConfiguration;
            return;
        }
        std::vector<unsigned char> stacks(n_threads * kFiberStackBytes);
        BlockRun b;
        b.block_dim = threads;
        b.grid_dim = grid;
        b.fibers.resize(n_threads);
        size_t i = 0;
        for (unsigned int z = 0; z < threads.z; ++z)
            for (unsigned int y = 0; y < threads.y; ++y)
                for (unsigned int x = 0; x < threads.x; ++x) {
                    b.fibers[i].stack = stacks.data() + i * kFiberStackBytes;
                    b.fibers[i++].tid = dim3(x, y, z);
                }
        b.body = [&]() { kernel(args...); };
        for (unsigned int bz = 0; bz < grid.z; ++bz) {
            for (unsigned int by = 0; by < grid.y; ++by) {
                for (unsigned int bx = 0; bx < grid.x; ++bx) {
                    b.block_idx = dim3(bx, by, bz);
                    b.shared.assign(shmem + 16, 0xFF);
                    e.run = &b;
                    run_block(b);
                    e.run = nullptr;
                }
            }
        }
    }
};

template <typename... KArgs>
Launcher<KArgs...> make_launcher(dim3 grid, dim3 threads, size_t shmem, void (*kernel)(KArgs...)) {
    return Launcher<KArgs...>{grid, threads, shmem, kernel};
}

inline unsigned char *dynamic_shared() {
    unsigned char *p = block().shared.data();
    return reinterpret_cast<unsigned char *>((reinterpret_cast<uintptr_t>(p) + 15) & ~uintptr_t(15));
}

template <typename T>
inline uint32_t to_bits(T v) {
    static_assert(sizeof(T) == 4, "32-bit values only");
    uint32_t u;
    std::memcpy(&u, &v, 4);
    return u;
}

template <typename T>
inline T from_bits(uint32_t u) {
    T v;
    std::memcpy(&v, &u, 4);
    return v;
}

inline uint32_t warp_op(WarpOp op, uint32_t value, int32_t arg) {
    Fiber &f = self();
    f.op = op;
    f.value = value;
    f.arg = arg;
    f.wait = Wait::kWarp;
    yield_to_scheduler();
    return self().result;
}

inline uint32_t block_barrier(uint32_t value) {
    Fiber &f = self();
    f.value = value;
    f.wait = Wait::kBlock;
    yield_to_scheduler();
    return self().result;
}

} // namespace gsseg::emu

#define threadIdx (gsseg::emu::self().tid)
#define blockIdx (gsseg::emu::block().block_idx)
#define blockDim (gsseg::emu::block().block_dim)
#define gridDim (gsseg::emu::block().grid_dim)

inline void __syncthreads() { gsseg::emu::block_barrier(0); }
inline int __syncthreads_count(int pred) { return static_cast<int>(gsseg::emu::block_barrier(pred != 0)); }
inline int __syncthreads_or(int pred) { return gsseg::emu::block_barrier(pred != 0) != 0; }

inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
    return gsseg::emu::from_bits<float>(
        gsseg::emu::warp_op(gsseg::emu::WarpOp::kShflXor, gsseg::emu::to_bits(v), lane_mask));
}
inline int32_t __shfl_xor_sync(unsigned, int32_t v, int lane_mask) {
    return gsseg::emu::from_bits<int32_t>(
        gsseg::emu::warp_op(gsseg::emu::WarpOp::kShflXor, gsseg::emu::to_bits(v), lane_mask));
}
inline int __any_sync(unsigned, int pred) {
    return static_cast<int>(gsseg::emu::warp_op(gsseg::emu::WarpOp::kAny, pred != 0, 0));
}

inline float atomicAdd(float *address, float v) {
    const float old = *address;
    *address = old + v;
    return old;
}
inline int32_t atomicMax(int32_t *address, int32_t v) {
    const int32_t old = *address;
    *address = old > v ? old : v;
    return old;
}
template <typename T>
inline T __ldg(const T *p) {
    return *p;
}

inline cudaError_t cudaGetLastError() {
    const cudaError_t e = gsseg::emu::emulator().last_error;
    gsseg::emu::emulator().last_error = cudaSuccess;
    return e;
}
inline const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess:
        return "no error";
    case cudaErrorInvalidValue:
        return "invalid argument";
    case cudaErrorInvalidConfiguration:
        return "invalid configuration argument";
    }
    return "unknown error";
}

#define GSSEG_LAUNCH(grid, threads, shmem, stream, ...) \
    ((void)(stream), gsseg::emu::make_launcher(grid, threads, shmem, &__VA_ARGS__))
#define GSSEG_DYNAMIC_SHARED(name) unsigned char *name = gsseg::emu::dynamic_shared()
