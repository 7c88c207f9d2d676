"""The reservation admin's add/change form as a POST body (the admin and closures tests, and
the sync tests that change a booking in the admin)."""

from datetime import timedelta


def reservation_form(space, user, start, **extra):
    data = {
        "space": space.pk,
        "requested_for": user.pk,
        "title": "From admin",
        "start_0": start.strftime("%Y-%m-%d"),
        "start_1": start.strftime("%H:%M:%S"),
        "end_0": start.strftime("%Y-%m-%d"),
        "end_1": (start + timedelta(hours=1)).strftime("%H:%M:%S"),
        "public_nickname": "",
        "description": "",
        "kind": "standard",
        "attendees_text": "",
    }
    data.update(extra)
    return data
