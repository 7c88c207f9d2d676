"""Django's Redis cache, made safe to share a Redis database with the Celery broker.

Reserva keeps its cache (the rate-limit counters of the API, the OAuth token endpoint and the
sign-in lockouts) in the same Redis as the broker queues and the sync locks by default
(``CACHE_URL`` falls back to ``REDIS_URL``). Django's ``RedisCache.clear()`` is ``FLUSHDB``:
one call, from a test or a shell, would wipe the queued tasks and every lock. Here ``clear()``
deletes only the keys under this cache's ``KEY_PREFIX``; everything else is Django's own
backend, whose ``add`` (``SET NX``) and ``incr`` (``INCRBY``) are atomic across processes.
"""

from __future__ import annotations

import re

from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


class PrefixedRedisCache(RedisCache):
    """``RedisCache`` whose ``clear()`` removes its own keys only, never the whole database."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        if not self.key_prefix:
            # Without a prefix our keys cannot be told from the broker's: clear() could not
            # stay within them, and a key could collide with a queue's name.
            raise ImproperlyConfigured("PrefixedRedisCache needs a non-empty KEY_PREFIX")

    def clear(self) -> bool:
        client = self._cache.get_client(None, write=True)
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.key_prefix) + ":*"
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
        return True
