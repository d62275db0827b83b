"""Hotspot warnings: surges, recurrences and clusters of events (README "Hotspot warnings")."""
