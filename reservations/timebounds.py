"""The span of time Reserva accepts: years 1900 to 2999, in every entry point.

Python's datetimes end at years 1 and 9999, and a time near either end overflows as soon as it
is converted to a location's zone, has a booking's length added, or starts a series
(``OverflowError``: a 500 in the API, the admin and the booking service). Nothing bookable lies
that far away, so the API's fields, the forms and the service refuse such times first, with a
message that says what is allowed. The upper bound leaves room for the longest series (366
occurrences every 99 months) without reaching year 9999.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

FIRST_YEAR, LAST_YEAR = 1900, 2999
EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
LATEST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)
OUT_OF_RANGE = f"Choose a time between the years {FIRST_YEAR} and {LAST_YEAR}."


def in_range(value: datetime | date) -> bool:
    """An aware datetime (compared in UTC) or a date (by its year) within the accepted span."""
    if isinstance(value, datetime):
        # Comparing aware datetimes converts through UTC, which itself overflows at the edges.
        try:
            return EARLIEST <= value < LATEST
        except OverflowError:
            return False
    return FIRST_YEAR <= value.year <= LAST_YEAR
