"""Presentation logic with no Dash in it: formatting, labels, URL state, colour scales."""
