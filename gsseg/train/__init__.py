"""Training stages: the RGB stage (``rgb``), the identity-feature stage (``features``), their losses,
the data-parallel helpers and the pipeline that runs them. Their settings are
:mod:`gsseg.config.train`; the run directory they write is :mod:`gsseg.run`."""
