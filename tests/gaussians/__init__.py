"""Tests of the gaussians stage."""
