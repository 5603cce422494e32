"""The one ``--device`` resolver every stage uses (gsseg.utils.device): a bad name or a CUDA device
on a machine without one is a one-line GssegError, before any work starts."""

from __future__ import annotations

import pytest
import torch

from gsseg.errors import GssegError
from gsseg.utils.device import resolve_device


def test_auto_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_named_devices_pass_through(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


@pytest.mark.parametrize("name", ["tpu9", "cuda:x", "", "CPU"])
def test_unknown_names_are_one_clear_line(name):
    with pytest.raises(GssegError, match="unknown device") as e:
        resolve_device(name)
    assert "\n" not in str(e.value) and repr(name) in str(e.value)


def test_cuda_without_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:0"):
        with pytest.raises(GssegError, match="CUDA is not available"):
            resolve_device(name)


def test_every_stage_uses_the_one_resolver():
    from pathlib import Path

    import gsseg

    root = Path(gsseg.__file__).parent
    defined = [p for p in root.rglob("*.py") if "def resolve_device" in p.read_text()]
    assert [p.relative_to(root).as_posix() for p in defined] == ["utils/device.py"]
