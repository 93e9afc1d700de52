"""Eval suites: lip-sync, identity, stability and speed metrics."""
