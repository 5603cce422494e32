"""The run directory ``RUN/`` and what every stage reads from it: its layout and recorded config
(:class:`RunDir`), stage checkpoints (:mod:`gsseg.run.checkpoint`) and the step-indexed schedule a
resumed stage replays (:mod:`gsseg.run.schedule`). It sits below every stage: it imports only
``gsseg.config``, ``gsseg.errors`` and ``gsseg.utils``."""

from gsseg.run.run_dir import RunDir

__all__ = ["RunDir"]
