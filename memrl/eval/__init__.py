"""Evaluation: Continual World metrics, retention matrices, plots, reports, and the demo."""
