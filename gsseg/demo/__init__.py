"""The end-to-end demo on a built-in scene (``gsseg demo``)."""

from gsseg.demo.pipeline import DemoConfig, DemoResult, run_demo

__all__ = ["DemoConfig", "DemoResult", "run_demo"]
