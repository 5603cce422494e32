"""Built-in synthetic scenes with ground-truth part / object / group labels (``gsseg synth``)."""

from gsseg.synth.recipes import DEFAULT_SCENE, SCENE_NAMES
from gsseg.synth.writer import make_scene

__all__ = ["DEFAULT_SCENE", "SCENE_NAMES", "make_scene"]
