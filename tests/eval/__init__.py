"""Tests of the eval stage."""
