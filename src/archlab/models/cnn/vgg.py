"""Placeholder: filled in by the vision work (issue 5)."""
