"""Tests of the export stage."""
