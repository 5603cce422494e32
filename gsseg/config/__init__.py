"""The settings a run records in ``RUN/config.json``: the training stages (:mod:`gsseg.config.train`)
and the NeRF backend (:mod:`gsseg.config.field`). Plain dataclasses below every package that reads
a run (they import nothing else of gsseg)."""
