"""Packaging beyond what pyproject.toml can say: the kernel sources live at the top level of the
checkout (``cuda_ext/<op>/``) and ship inside the package as ``gsseg/cuda_ext/<op>/`` (setuptools
maps the folder into the package at build time), so a wheel or ``pip install .`` builds the C++ CPU
kernel from its own copy. Everything else is in pyproject.toml."""

from pathlib import Path

from setuptools import find_packages, setup

KERNEL_FILES = ["*.cpp", "*.cu", "*.h", "*.cuh"]
OPS = sorted(p.name for p in (Path(__file__).resolve().parent / "cuda_ext").iterdir() if p.is_dir())

setup(
    packages=[*find_packages(include=["gsseg", "gsseg.*"]), "gsseg.cuda_ext", *(f"gsseg.cuda_ext.{op}" for op in OPS)],
    package_dir={"gsseg.cuda_ext": "cuda_ext"},
    package_data={
        "gsseg": ["py.typed"],
        "gsseg.cuda_ext": KERNEL_FILES,
        **{f"gsseg.cuda_ext.{op}": KERNEL_FILES for op in OPS},
    },
)
