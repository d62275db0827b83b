"""Loading a real city's own data: unit boundaries (units.py) and events."""
