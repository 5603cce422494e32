"""Tests of the viewer stage."""
