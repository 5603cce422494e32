"""Build-on-first-use of gsseg's CUDA feature kernels (torch's JIT extension loader, cached).

The build is attempted only when ``torch.cuda.is_available()``. A failed build emits one
warning per process and ``load_cuda_extension()`` returns ``None``, so callers fall back to
another backend instead of crashing. Ahead of time: ``python -m gsseg.render.cuda_extension``.
Sources, include path and the torch loader call are those of :mod:`gsseg.render.extensions`
(``kernel_sources("cuda")``, ``load_extension``; the build folder is named by ``extension_name``).
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from types import ModuleType

from gsseg.render.extensions import (
    extension_name,
    kernel_include_dirs,
    kernel_sources,
    load_extension,
    missing_sources,
)

EXTENSION_NAME = "gsseg_cuda_ext"


def cuda_sources() -> list[Path]:
    """Sources of the extension (:func:`gsseg.render.extensions.kernel_sources` ``("cuda")``): the
    torch binding ``cuda_ext/bindings_cuda.cpp`` plus every ``cuda_ext/<op>/*.cu``."""
    return kernel_sources("cuda")


def cuda_include_dirs() -> list[Path]:
    return kernel_include_dirs()


def load_cuda_extension(verbose: bool = False) -> ModuleType | None:
    """The compiled extension module, or ``None`` without a GPU or when the build fails.

    The first call compiles (minutes); later calls in the process return the same module and
    later processes reuse torch's extension cache (``TORCH_EXTENSIONS_DIR``).
    ``GSSEG_NO_CUDA_EXT=1`` disables it (features then use gsplat's N-D rasterizer).
    """
    import torch

    if os.environ.get("GSSEG_NO_CUDA_EXT", "") not in ("", "0") or not torch.cuda.is_available():
        return None
    return _build(verbose)


@functools.lru_cache(maxsize=1)
def _build(verbose: bool) -> ModuleType | None:
    sources = cuda_sources()
    missing = missing_sources(sources)
    if missing:
        warnings.warn(
            f"gsseg CUDA kernels unavailable (missing sources: {', '.join(missing)}); "
            "falling back to gsplat / the CPU kernel",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    try:
        return load_extension(
            extension_name(EXTENSION_NAME),
            sources,
            extra_cflags=["-O3"],
            extra_cuda_cflags=["-O3", "-lineinfo"],
            verbose=verbose or bool(os.environ.get("GSSEG_VERBOSE_BUILD")),
        )
    except Exception as exc:  # a missing compiler or a failed build must never crash a render
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        warnings.warn(
            f"gsseg CUDA kernels failed to build ({first_line}); falling back to "
            "gsplat / the CPU kernel. Set GSSEG_VERBOSE_BUILD=1 to see the compiler output.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def main() -> int:
    """Build the extension ahead of time; exit status 0 when it loads."""
    import torch

    if not torch.cuda.is_available():
        print("gsseg: no CUDA GPU visible to torch; nothing to build")
        return 1
    module = load_cuda_extension(verbose=True)
    print("gsseg: CUDA kernels", "ready" if module is not None else "FAILED to build")
    return 0 if module is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
