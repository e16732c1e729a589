"""The rating terminal: the citizen rates the clerk after service (Kivy app, durable outbox)."""
