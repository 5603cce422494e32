"""Build gsseg's compiled kernels ahead of time (otherwise they build on first use).

    python scripts/build_ext.py            # C++ CPU rasterizer; plus the CUDA kernels if a GPU is visible
    python scripts/build_ext.py --verbose  # show the compiler output

Both land in torch's extension cache (``TORCH_EXTENSIONS_DIR``). Exit status 0 when every
extension that applies to this machine loaded.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print the compiler output")
    args = parser.parse_args(argv)

    import torch

    from gsseg.render.extensions import load_cpu_extension

    ok = True
    start = time.perf_counter()
    cpu = load_cpu_extension(verbose=args.verbose)
    print(f"gsseg: C++ CPU rasterizer {'ready' if cpu is not None else 'FAILED'} ({time.perf_counter() - start:.1f}s)")
    ok &= cpu is not None
    if torch.cuda.is_available():
        from gsseg.render.cuda_extension import load_cuda_extension

        start = time.perf_counter()
        cuda = load_cuda_extension(verbose=args.verbose)
        print(f"gsseg: CUDA kernels {'ready' if cuda is not None else 'FAILED'} ({time.perf_counter() - start:.1f}s)")
        ok &= cuda is not None
    else:
        print("gsseg: no CUDA GPU visible to torch; CUDA kernels not built")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
