"""Build-on-first-use of gsseg's compiled kernels (torch's JIT extension loader, cached).

The kernel sources sit at the top of the checkout, one folder per op (``cuda_ext/<op>/``: the CPU
kernel ``<op>.cpp`` and/or the CUDA kernel ``<op>.cu``, and one header ``<op>.h`` declaring what the
op has; shared helpers in ``cuda_ext/utils/``); a wheel or ``pip install .`` ships them inside the
package as ``gsseg/cuda_ext/`` (``setup.py`` maps the folder in), and :func:`csrc_root` finds either
copy. This module is the single place that knows that layout and calls torch's loader
(:func:`kernel_sources`, :func:`load_extension`); ``gsseg.render.cuda_extension`` builds the CUDA
module through it.

The CPU extension: the first call compiles ``cuda_ext/bindings_cpu.cpp`` + every
``cuda_ext/<op>/*.cpp`` with ``-O3 -fopenmp`` (plus ``-mavx2`` where torch reports an AVX2 CPU)
into torch's extension cache (``TORCH_EXTENSIONS_DIR``, one build folder per source location:
:func:`extension_name`); later processes reuse it. Loading it also
keeps glibc from handing the training loop's buffers back to the OS after every step
(``_tune_malloc``; ``GSSEG_MALLOC_TUNING=0`` opts out). No compiler or a failed build gives one
warning and ``None``, and ``render`` falls back to the pure-PyTorch reference.
``GSSEG_NO_CPU_EXT=1`` disables the extension. Ahead of time: ``python scripts/build_ext.py``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import warnings
from pathlib import Path
from types import ModuleType

EXTENSION_NAME = "gsseg_cpu_ext"


def csrc_root() -> Path:
    """The kernel sources, for the CPU and CUDA loaders: ``gsseg/cuda_ext/`` in an installed wheel,
    else ``cuda_ext/`` beside the package in a source checkout (also an editable install). Missing
    from both: the in-package path, which the loaders report as missing."""
    package = Path(__file__).resolve().parents[1]
    installed, checkout = package / "cuda_ext", package.parent / "cuda_ext"
    if not installed.is_dir() and (package.parent / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return installed


def extension_name(base: str, root: Path | None = None) -> str:
    """Name of an extension built from the sources at ``root`` (default :func:`csrc_root`):
    ``base`` plus a hash of the source location. torch keys its build folder and the module by this
    name, so sources at another path (a moved folder, another checkout, an installed wheel) build
    in a folder of their own instead of loading a module built from other files; within one folder
    torch's ninja build recompiles what changed (sources and the headers they include)."""
    where = str((root or csrc_root()).resolve())
    return f"{base}_{hashlib.sha256(where.encode()).hexdigest()[:10]}"


def kernel_sources(backend: str) -> list[Path]:
    """Sources of one extension: ``cuda_ext/bindings_<backend>.cpp`` plus every op's kernel of that
    backend (``cuda_ext/<op>/*.cpp`` for ``"cpu"``, ``cuda_ext/<op>/*.cu`` for ``"cuda"``)."""
    suffix = {"cpu": ".cpp", "cuda": ".cu"}[backend]
    root = csrc_root()
    return [root / f"bindings_{backend}.cpp", *sorted(root.glob(f"*/*{suffix}"))]


def kernel_include_dirs() -> list[Path]:
    """Include path of every kernel source: ``cuda_ext`` (sources include ``"<op>/<op>.h"``,
    ``"utils/..."``)."""
    return [csrc_root()]


def cpu_sources() -> list[Path]:
    """Sources of the CPU extension (:func:`kernel_sources` ``("cpu")``)."""
    return kernel_sources("cpu")


def missing_sources(sources: list[Path]) -> list[str]:
    """The paths among ``sources`` and the include directories that do not exist."""
    return [str(p) for p in [*sources, *kernel_include_dirs()] if not p.exists()]


def load_extension(
    name: str,
    sources: list[Path],
    *,
    extra_cflags: list[str],
    extra_cuda_cflags: list[str] | None = None,
    extra_ldflags: list[str] | None = None,
    with_cuda: bool | None = None,
    verbose: bool = False,
) -> ModuleType:
    """Compile (or reuse from torch's cache) and import the extension ``name`` from ``sources``
    with gsseg's include path. Raises on a failed build; callers decide how to fall back."""
    from torch.utils.cpp_extension import load

    # torch names object files after the source's file name (``x.cpp`` -> ``x.o``, ``x.cu`` ->
    # ``x.cuda.o``), so two ops must never share one.
    objects = [(p.stem, p.suffix == ".cu") for p in sources]
    if len(set(objects)) != len(objects):
        raise RuntimeError(f"kernel sources with the same file name: {sorted(str(p) for p in sources)}")
    return load(
        name=name,
        sources=[str(p) for p in sources],
        extra_include_paths=[str(p) for p in kernel_include_dirs()],
        extra_cflags=extra_cflags,
        extra_cuda_cflags=extra_cuda_cflags,
        extra_ldflags=extra_ldflags,
        with_cuda=with_cuda,
        verbose=verbose,
    )


def cpu_compile_flags() -> list[str]:
    """Compiler flags of the CPU extension. AVX2 widens the rasterizer's 8-pixel lane blocks to
    one register; it is enabled only where torch detects it on this CPU, and the cache key
    includes the flags, so a cache shared with an older CPU rebuilds rather than crashes.
    ``-ffp-contract=off`` keeps every copy of a formula rounding the same way (the backward
    recomputes the forward's alphas bit for bit)."""
    import torch

    flags = ["-O3", "-std=c++17", "-fopenmp", "-ffp-contract=off"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags.append("-mavx2")
    return flags


def load_cpu_extension(verbose: bool = False) -> ModuleType | None:
    """The compiled CPU extension module, or ``None`` when disabled or unbuildable."""
    if os.environ.get("GSSEG_NO_CPU_EXT", "") not in ("", "0"):
        return None
    return _build(verbose or bool(os.environ.get("GSSEG_VERBOSE_BUILD")))


def _fallback(reason: str) -> None:
    warnings.warn(
        f"gsseg C++ CPU rasterizer unavailable ({reason}); falling back to the (slow) PyTorch reference. "
        "Set GSSEG_VERBOSE_BUILD=1 to see the compiler output.",
        RuntimeWarning,
        stacklevel=4,
    )


@functools.lru_cache(maxsize=1)
def _build(verbose: bool) -> ModuleType | None:
    sources = cpu_sources()
    missing = missing_sources(sources)
    if missing or len(sources) < 2:
        _fallback(f"missing sources: {', '.join(missing) or 'cuda_ext/<op>/*.cpp'}")
        return None
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        _fallback("no C++ compiler found")
        return None
    try:
        module = load_extension(
            extension_name(EXTENSION_NAME),
            sources,
            extra_cflags=cpu_compile_flags(),
            extra_ldflags=["-fopenmp"],
            with_cuda=False,
            verbose=verbose,
        )
    except Exception as exc:  # a missing compiler or a failed build must never crash a render
        text = str(exc).strip()
        _fallback(text.splitlines()[0] if text else type(exc).__name__)
        return None
    _tune_malloc(module)
    return module


# glibc settings applied once the CPU extension loads (GSSEG_MALLOC_TUNING=0 leaves glibc's
# defaults): a render + backward frees and re-allocates megabyte-sized tensors every step, and with
# the defaults each step page-faults them in afresh (600-830 faults, 1.4-3.4 ms of kernel time per
# fwd+bwd step of the 20k-Gaussian benchmark render, measured with getrusage). Below 32 MB
# allocations stay in the heap, which keeps up to 256 MB of freed memory instead of returning it
# to the OS.
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 256 << 20


def _tune_malloc(module: ModuleType) -> None:
    if os.environ.get("GSSEG_MALLOC_TUNING", "1") in ("0", "false", "no") or not hasattr(module, "tune_malloc"):
        return
    module.tune_malloc(MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES)
