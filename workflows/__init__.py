"""Workflows decide; they never touch the world themselves."""
