"""The cache that holds every rate limit and lockout: Redis when there is one (shared by all
processes), local memory otherwise; on the broker's Redis it never wipes the broker's keys."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.conftest import ROOT, subprocess_env

PRINT_CACHE = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.CACHES['default']))"
)


def cache_settings(**env: str) -> dict:
    environment = subprocess_env(**env)
    for name in ("REDIS_URL", "CACHE_URL", "CACHE_KEY_PREFIX"):
        if name not in env:
            environment.pop(name, None)
    out = subprocess.run(
        [sys.executable, "-c", PRINT_CACHE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cache_follows_redis_url_else_local_memory():
    on_redis = cache_settings(REDIS_URL="redis://127.0.0.1:6379/3")
    assert on_redis["BACKEND"] == "config.cache.PrefixedRedisCache"
    assert on_redis["LOCATION"] == "redis://127.0.0.1:6379/3"
    assert on_redis["KEY_PREFIX"] == "reserva:cache"

    own = cache_settings(REDIS_URL="redis://127.0.0.1:6379/3", CACHE_URL="redis://cache:6379/1")
    assert own["LOCATION"] == "redis://cache:6379/1"

    alone = cache_settings()
    assert alone["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def test_an_empty_key_prefix_on_redis_stops_the_start():
    environment = subprocess_env(REDIS_URL="redis://127.0.0.1:6379/3", CACHE_KEY_PREFIX="")
    out = subprocess.run(
        [sys.executable, "-c", PRINT_CACHE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "CACHE_KEY_PREFIX may not be empty" in out.stderr


@pytest.mark.redis
def test_counters_are_in_redis_and_clearing_them_keeps_the_broker_queue():
    import redis

    raw = redis.Redis.from_url(settings.REDIS_URL)
    queue = f"reserva-test-queue-{uuid.uuid4().hex}"  # stands for Celery's queue in the same db
    raw.lpush(queue, "a task message")
    try:
        cache.set("attempts", 3)
        # Stored in Redis, where every gunicorn worker and host sees it.
        prefix = settings.CACHES["default"]["KEY_PREFIX"]
        assert [key.decode() for key in raw.scan_iter(match=f"{prefix}:*")] == [
            f"{prefix}:1:attempts"
        ]
        cache.clear()
        assert cache.get("attempts") is None
        assert raw.lrange(queue, 0, -1) == [b"a task message"]
    finally:
        raw.delete(queue)
