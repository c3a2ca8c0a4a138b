"""Synthetic sensors for demos and tests: no file and no hardware needed."""
