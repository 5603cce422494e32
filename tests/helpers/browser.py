"""Headless system Chromium for the viewer's browser tests (Playwright drives it)."""

from __future__ import annotations

import socket

CHROMIUM = "/usr/bin/chromium"
# software WebGL (SwiftShader) and no network side traffic: the tests run on machines without a GPU
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for ``gsseg view --port``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
