"""APScheduler wiring: leader election, periodic ticks, send windows and calendars."""

__all__: list[str] = []
