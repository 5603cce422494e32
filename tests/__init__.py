"""gsseg test suite, one sub-package per stage; shared fixtures in conftest.py, helpers in tests.helpers."""
