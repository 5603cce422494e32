"""Tests of the NeRF-style field backend."""
