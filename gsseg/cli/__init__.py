"""The ``gsseg`` command line. Each verb lives in its own module in ``gsseg.cli.commands``."""
