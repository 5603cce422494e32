"""Niantic's SPZ format (version 2), written from its published specification.

No maintained Python SPZ writer installs here: PyPI's ``spz`` is a Rust source package that
needs crates.io to build, Niantic's own bindings are not on PyPI, and ``gsply`` pulls numba.
The format is small (a gzip stream of a 16-byte header and per-attribute byte arrays), so it is
encoded here with numpy and checked against PlayCanvas splat-transform, the reference reader
behind SuperSplat (``tests/export/test_export_formats.py``).

Stream layout, all little-endian: header ``magic 0x5053474e, version 2, count (uint32),
sh_degree, fractional_bits, flags, reserved (uint8)``, then for all Gaussians in turn:
positions (3 x 24-bit signed fixed point), alphas (uint8 sigmoid(opacity)), colours (uint8 of
``dc * 0.15 + 0.5``), scales (uint8 of ``(log scale + 10) * 16``), rotations (uint8 x, y, z of
the unit quaternion with w >= 0, ``q * 127.5 + 127.5``), SH rest (uint8 ``c * 128 + 128``,
coefficient-major, colour fastest). SPZ stores right-up-back axes; a 3DGS PLY is right-down-
front, so y and z flip on the way in, with the quaternion and the odd SH terms that go with them.
"""

from __future__ import annotations

import gzip
import struct

import numpy as np
import torch

from gsseg.gaussians.scene import GaussianScene

MAGIC = 0x5053474E
VERSION = 2
FRACTIONAL_BITS = 12
COLOR_SCALE = 0.15

# Sign of each SH-rest coefficient (degrees 1..3, real SH basis order) under (x, y, z) -> (x, -y, -z).
_SH_FLIP = np.array(
    [
        -1,
        -1,
        1,  # degree 1: y, z, x
        -1,
        1,
        1,
        -1,
        1,  # degree 2: xy, yz, z^2, xz, x^2-y^2
        -1,
        1,
        -1,
        -1,
        1,
        -1,
        1,
    ],  # degree 3
    dtype=np.float32,
)


def _bytes(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def encode_spz(scene: GaussianScene) -> bytes:
    """The gzip-compressed SPZ v2 bytes of ``scene`` (any SH degree 0..3)."""
    n = len(scene)
    f = lambda t: t.detach().cpu().to(torch.float32).numpy()  # noqa: E731
    flip = np.array([1.0, -1.0, -1.0], np.float32)
    means = f(scene.means) * flip
    fixed = np.round(means.astype(np.float64) * (1 << FRACTIONAL_BITS)).astype(np.int64)
    limit = (1 << 23) - 1
    fixed = np.clip(fixed, -limit - 1, limit) & 0xFFFFFF  # two's complement in 24 bits
    positions = np.stack([(fixed >> s) & 0xFF for s in (0, 8, 16)], axis=-1).astype(np.uint8)  # [N,3,3]

    alphas = _bytes(1.0 / (1.0 + np.exp(-f(scene.logit_opacities))) * 255.0)
    colors = _bytes((f(scene.sh0).reshape(n, 3) * COLOR_SCALE + 0.5) * 255.0)
    scales = _bytes((f(scene.log_scales) + 10.0) * 16.0)

    q = f(scene.quats)  # wxyz
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    q = q * np.array([1.0, 1.0, -1.0, -1.0], np.float32)  # the same rotation in the flipped axes
    q = np.where(q[:, :1] < 0, -q, q)  # w >= 0, so w is recoverable from x, y, z
    rotations = _bytes(q[:, 1:] * 127.5 + 127.5)

    k = scene.shN.shape[1]
    sh_rest = f(scene.shN).reshape(n, k, 3) * _SH_FLIP[:k, None]
    sh = _bytes(sh_rest.reshape(n, 3 * k) * 128.0 + 128.0)

    header = struct.pack("<IIIBBBB", MAGIC, VERSION, n, scene.sh_degree, FRACTIONAL_BITS, 0, 0)
    body = b"".join(a.tobytes() for a in (positions.reshape(n, 9), alphas, colors, scales, rotations, sh))
    return gzip.compress(header + body, compresslevel=6)
