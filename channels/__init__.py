"""Sending notifications: one adapter per provider protocol behind one small interface."""

__all__: list[str] = []
