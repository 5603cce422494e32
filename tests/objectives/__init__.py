"""Tests of the objectives stage."""
