"""Tests of the segment stage."""
