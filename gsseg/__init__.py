"""gsseg: segment 3D Gaussian-splatting scenes by lifting inconsistent 2D masks into
per-Gaussian identity features."""

__version__ = "0.1.0"
