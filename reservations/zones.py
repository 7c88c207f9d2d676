"""The time zones an administrator may choose for a location: current IANA zone names.

Read from the tz database's own index (``tzdata.zi`` of the ``tzdata`` package): ``Z`` lines
are zones, ``L`` lines links. Links are the deprecated aliases (``US/Eastern``, ``GB``,
``Asia/Calcutta``) kept for old data, so they are left out, as are the POSIX-style rule zones
(``EST5EDT``), ``Factory`` and ``Etc/GMT+5``-style offsets (whose signs read backwards).
``UTC`` is offered by that name. A location still holding an alias keeps it until changed.
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from importlib import resources


@cache
def current_zones() -> tuple[str, ...]:
    """Current IANA zone names that this Python can load, sorted, ``UTC`` first."""
    index = resources.files("tzdata.zoneinfo").joinpath("tzdata.zi").read_text()
    loadable = zoneinfo.available_timezones()
    names = {
        line.split()[1]
        for line in index.splitlines()
        if line.startswith("Z ")
        and "/" in line.split()[1]
        and not line.split()[1].startswith("Etc/")
    }
    return ("UTC", *sorted(names & loadable))


def choices(current: str = "") -> list[tuple[str, str]]:
    """Choices for a select; ``current`` is kept (and marked) when it is no longer offered."""
    offered = [(name, name.replace("_", " ")) for name in current_zones()]
    if current and current not in current_zones():
        offered.insert(0, (current, f"{current} (old name: choose its current zone)"))
    return offered
