"""Benchmarks behind ``memrl bench``: every speed claim memrl makes is measured here."""
