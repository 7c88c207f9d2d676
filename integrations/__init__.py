"""Talking to the outside world: provider clients, OAuth helpers, the provider sandbox.

Nothing in this package touches the ORM or imports ``reservations`` or ``calendars``: it takes
plain values and returns dataclasses.
"""
