"""/healthz, the production deployment check, and demo data."""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from django.core.management import call_command

from reservations.models import Closure, Location, Reservation, Space

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok", "status": "ok"}


@pytest.mark.django_db
def test_healthz_names_the_unreachable_broker(client, settings):
    from config.celery import app

    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok" and body["broker"].startswith("unreachable")


def production_env(tmp_path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "DEBUG": "false",
        "SECRET_KEY": "x" * 60 + "production-like-secret-0123456789",
        "ALLOWED_HOSTS": "reserva.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://reserva.example.com",
        "PUBLIC_BASE_URL": "https://reserva.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "EMAIL_URL": "smtp://mail.example.com:587",
        "TRUST_PROXY_HEADERS": "true",
        "FIELD_ENCRYPTION_KEYS": "7S0l3u2m0hqvXv3Fq6a0e5x9pJk2bKk8B9a1TQk3Xy0=",
    }


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = deploy_check(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_wants_encryption_keys(tmp_path):
    env = production_env(tmp_path)
    del env["FIELD_ENCRYPTION_KEYS"]
    result = deploy_check(env)
    assert result.returncode != 0
    assert "reserva.E001" in result.stderr + result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_seed_demo_is_idempotent():
    call_command("seed_demo", verbosity=0)
    counts = (Location.objects.count(), Space.objects.count(), Reservation.objects.count())
    call_command("seed_demo", verbosity=0)
    assert counts == (Location.objects.count(), Space.objects.count(), Reservation.objects.count())
    assert counts[0] == 2 and counts[1] == 30
    assert {loc.time_zone for loc in Location.objects.all()} == {
        "Europe/London",
        "America/New_York",
    }
    assert Space.objects.filter(kind="seat", container__kind="container").count() == 8
    # One room under maintenance next week, and Christmas Day every year at each location.
    (maintenance,) = Closure.objects.filter(space__isnull=False)
    assert maintenance.space.name == "Avon" and maintenance.start_date > date.today()
    assert Closure.objects.filter(space__isnull=True, yearly=True).count() == 2
    assert not Reservation.objects.filter(
        space=maintenance.space,
        start__date=maintenance.start_date,
        status__in=["pending", "confirmed"],
    ).exists()


MKDIR_SPY = """
import os, pathlib
made = []
pathlib.Path.mkdir = lambda self, *args, **kwargs: made.append(str(self))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import config.settings
print("settings:", made)
from config.celery import app
app.conf.broker_url  # what any process that sends or takes a task reads first
print("celery:", made)
"""


def test_importing_settings_makes_no_folder_and_celery_makes_the_broker_s():
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    result = subprocess.run(
        [sys.executable, "-c", MKDIR_SPY],
        cwd=Path(__file__).resolve().parents[2],
        env={**env, "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    settings_line, celery_line = result.stdout.strip().splitlines()
    assert settings_line == "settings: []"
    assert "var/broker/queue" in celery_line and "var/broker/control" in celery_line


POOL_SETTINGS = """
import json
from config import settings
db = settings.DATABASES["default"]
print(json.dumps({"pool": db.get("OPTIONS", {}).get("pool"), "age": db["CONN_MAX_AGE"]}))
"""


def pool_settings(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """The database settings a process gets from ``env`` (a fake psycopg_pool on the path:
    the settings only look for the module; the lock may not have it yet)."""
    fake = tmp_path / "site"
    (fake / "psycopg_pool").mkdir(parents=True, exist_ok=True)
    (fake / "psycopg_pool" / "__init__.py").write_text("")
    return subprocess.run(
        [sys.executable, "-c", POOL_SETTINGS],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(fake),
            "DEBUG": "true",
            "DATABASE_URL": "postgres://reserva@127.0.0.1:5432/reserva",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_database_pool_gives_each_process_a_small_pool_and_no_persistent_connection(tmp_path):
    result = pool_settings(tmp_path, DATABASE_POOL="true", DATABASE_POOL_MAX_SIZE="2")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "pool": {"min_size": 1, "max_size": 2, "timeout": 10.0},
        "age": 0,
    }
    without = pool_settings(tmp_path)
    assert json.loads(without.stdout) == {"pool": None, "age": 60}


def test_database_pool_refuses_a_persistent_connection_age(tmp_path):
    result = pool_settings(tmp_path, DATABASE_POOL="true", CONN_MAX_AGE="60")
    assert result.returncode != 0
    assert "DATABASE_POOL=true needs CONN_MAX_AGE=0" in result.stderr
