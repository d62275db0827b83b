"""Who may use the cockpit and what they may see: API tokens (tokens.py)."""
