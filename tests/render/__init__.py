"""Tests of the render stage."""
