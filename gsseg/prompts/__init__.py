"""Prompts for prompted objectives (SANeRF-HQ style), a stage of its own: clicks and prompt files
become 3D points, and the points become one object mask per training view.

A prompt is a set of 3D points, each positive for one prompted object (ids 1..K) or negative
(id 0). The stage runs in four steps, a module each:

- :mod:`gsseg.prompts.spec` — what the user gave: clicks ``STEM:X,Y[@K]``, prompt files, the
  settings objectives carry (:class:`~gsseg.prompts.spec.PromptOptions`);
- :mod:`gsseg.prompts.lifting` — rendered (median) depth of the frozen Gaussians
  (:class:`~gsseg.prompts.lifting.SurfaceProbe`), clicks lifted to 3D surface points;
- :mod:`gsseg.prompts.propagation` — points projected into every view with an occlusion test,
  and each view's object mask from SAM point prompts or the mask store;
- :mod:`gsseg.prompts.run` — the whole stage over a run's training views
  (:func:`~gsseg.prompts.run.propagate_for_run`), what the prompted objectives receive.

Objectives (``gsseg.objectives``) never render: they take the per-view labels this stage
produces.
"""
