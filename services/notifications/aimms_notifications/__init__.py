"""Notifications: turns the scheme's events into emails, each sent exactly once."""
