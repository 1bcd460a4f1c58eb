"""Needle trajectory planning: approaches, search, safety checks, the plan model."""
