"""Tests of the masks stage."""
