"""Evaluation: success of policies on memory envs, and (later) retention metrics and reports."""
