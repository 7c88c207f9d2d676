"""Helpers shared by test modules (tests never import from another test module)."""
