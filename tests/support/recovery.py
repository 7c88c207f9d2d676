"""``free_limiter_slots``: the per-mailbox limiter's slots that a killed process held,
given back when a test that kills one ends."""

from __future__ import annotations

from calendars import remote
from integrations.limiter import FileLimiter
from integrations.sandbox.config import DEMO_CLIENT_ID


def free_limiter_slots(binding) -> None:
    """A killed process's slot in the shared per-mailbox limiter expires after its lease
    (60 s). The next request needs one slot of four and is not held up by it, but a later
    test's batch needs all four: a test that kills a process frees them when it ends."""
    backend = remote._limiter_backend(binding.provider.kind)
    key = f"graph:{DEMO_CLIENT_ID}:{binding.resource_email.lower()}"
    if isinstance(backend, FileLimiter):
        with backend._state(key) as state:
            state["inflight"] = {}
    else:
        backend.client.delete(backend._keys(key)[0])
