"""Tests of the CLI as a user meets it: demo, user path, progress lines, reliability, packaging, structure."""
