"""Tests of the prompts stage."""
