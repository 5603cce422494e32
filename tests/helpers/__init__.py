"""Importable test helpers (synthetic datasets, tiny runs, CLI drivers): ``from tests.helpers.x import y``."""
