"""Outputs: each package turns core values into one place's format and does its I/O."""
