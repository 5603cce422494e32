"""Show the user what a run learned: test-view renders, depth, current labels, one contact sheet."""

from gsseg.report.run import render_run

__all__ = ["render_run"]
