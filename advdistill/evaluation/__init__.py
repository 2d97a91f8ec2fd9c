"""Evaluation: the runner that applies metric plugins, and the report writer."""
