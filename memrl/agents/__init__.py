"""Learners and scripted policies that act in memrl's environments."""
