"""Shared fixtures and factories (``make_location``, ``make_space``, ``make_reservation``...).

Markers:
- ``postgres``: runs only when DATABASE_URL points at PostgreSQL;
- ``worker``: needs REDIS_URL; the test starts a real Celery worker process.
CI's PostgreSQL leg sets both, and fails if any test is skipped.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import override_settings

from reservations import services
from reservations.models import Location, OpeningHours, Space, SpaceKind

pytest_plugins = ["tests.browser"]  # Chromium fixtures, one definition for the session

_counter = itertools.count(1)
ROOT = Path(__file__).resolve().parents[1]
# Names this process's PostgreSQL sessions (its threads' included) in pg_stat_activity;
# subprocesses get their own name (subprocess_env), so a session left at the end says whose.
os.environ.setdefault("PGAPPNAME", f"pytest-{os.getpid()}")


# No test may reach the internet. Every name lookup of this process (the tests, live_server,
# eager tasks) goes through this guard: a host that is not loopback is refused at once (as an
# offline machine would, but without waiting for DNS) and recorded, and the test that caused
# it fails at teardown, naming the host, even when the code under test caught the error and
# retried (a push to the real login.microsoftonline.com looks like a provider outage).
_real_getaddrinfo = socket.getaddrinfo
_internet_attempts: list[str] = []


def _loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback or ipaddress.ip_address(name).is_unspecified
    except ValueError:
        return False


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host is not None and not _loopback(host if isinstance(host, str) else host.decode()):
        _internet_attempts.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, f"tests may not reach the internet ({host})")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True)
def _no_internet():
    _internet_attempts.clear()
    yield
    if _internet_attempts:
        hosts = sorted(set(_internet_attempts))
        _internet_attempts.clear()
        pytest.fail(f"the test tried to reach the internet: {', '.join(hosts)}")


def pytest_configure(config):
    # The embedded default's test database lives in VAR_DIR, which importing the settings no
    # longer creates (make test does; plain pytest on a fresh clone must work too).
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "postgres" in item.keywords and not settings.IS_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="needs DATABASE_URL=postgres://..."))
        if "worker" in item.keywords and not settings.REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs REDIS_URL for a real Celery worker"))
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs REDIS_URL"))


@pytest.fixture(scope="session", autouse=True)
def _no_session_left_on_the_test_database(request, django_db_blocker):
    """PostgreSQL: when the run ends, no other session may still be using the test database
    (a worker process left alive, a connection a thread did not close): Django then fails to
    drop it ("... is being accessed by other users"). Name such sessions (workers started by
    the tests set their queue as application_name) instead of that bare warning."""
    if not settings.IS_POSTGRES:
        yield
        return
    request.getfixturevalue("django_db_setup")  # so this ends before the database is dropped
    yield
    query = (
        "SELECT pid, application_name, state, backend_start, left(query, 200)"
        " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    def others() -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchall()

    own = os.environ["PGAPPNAME"]  # this process's sessions are named "<own>/<thread>"

    def left_by_others() -> list[tuple]:
        return [row for row in others() if not row[1].startswith(f"{own}/")]

    with django_db_blocker.unblock():
        if not wait_for(lambda: not left_by_others(), 10):
            sessions = "\n".join(map(str, left_by_others()))
            pytest.fail(f"sessions still on the test database at the end:\n{sessions}")
        # A thread of this very process that left its connection open (not a worker: those
        # are other processes, checked above) is named with its thread and closed here, so
        # the database can be dropped; the terminal says which thread, to be tracked down.
        for pid, name, state, started, query_text in others():
            print(f"\nA thread of the test process left a session open: {name} ({state}, "
                  f"opened {started:%H:%M:%S}, last: {query_text!r}); closing it.")  # fmt: skip
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def _name_the_session(sender, connection, **kwargs) -> None:
    """PostgreSQL sessions of this process carry the thread that opened them."""
    if connection.vendor == "postgresql":
        name = f"{os.environ['PGAPPNAME']}/{threading.current_thread().name}"[:63]
        with connection.cursor() as cursor:
            cursor.execute("SET application_name TO %s", [name])


connection_created.connect(_name_the_session, dispatch_uid="tests.name_the_session")


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """A cheap hasher: the default PBKDF2 (a million rounds) made every user the tests create,
    and every sign-in, cost a quarter of a second. Production settings are untouched."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_webhooks(settings):
    """Webhook subscriptions need a public URL the provider can reach: off unless a test turns
    them on (``public`` in tests/calendars/test_webhooks.py), so saving a binding does not
    call a provider."""
    settings.CALENDAR_WEBHOOKS = False


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """Each test counts rate limits and sign-in lockouts under a key prefix of its own, so none
    inherits another's counters. Nothing is cleared: on the PostgreSQL leg the cache is the
    broker's Redis database, and the counters expire with their windows anyway."""
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"{config.get('KEY_PREFIX', '')}:test-{uuid.uuid4().hex}"}
        for name, config in settings.CACHES.items()
    }


@pytest.fixture(scope="session")
def _media_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _own_media_root(settings, _media_folder):
    """Uploaded files (floor maps, photos; seed_demo's drawn ones) go to a temporary folder,
    never into the working tree's var/media."""
    settings.MEDIA_ROOT = str(_media_folder)


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    """Tasks run in-process unless a test starts a real worker (marked ``worker``)."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def frozen_now(monkeypatch) -> Callable[[datetime], None]:
    """Call it with a moment to make ``timezone.now()`` answer that moment for the test: a
    page that depends on the hour (quick reservation, the first free slot) must not depend on
    when the suite happens to run."""

    def freeze(moment: datetime) -> None:
        monkeypatch.setattr("django.utils.timezone.now", lambda: moment)

    return freeze


@pytest.fixture
def make_user(db):
    def make(username: str | None = None, *, perms: tuple[str, ...] = (), **extra):
        username = username or f"user{next(_counter)}"
        extra.setdefault("email", f"{username}@example.com")
        user = get_user_model().objects.create_user(username=username, password="pw", **extra)
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        return get_user_model().objects.get(pk=user.pk)  # fresh permission cache

    return make


@pytest.fixture
def make_location(db):
    def make(
        name: str | None = None,
        *,
        time_zone: str = "Europe/London",
        opens: clock = clock(0),
        closes: clock = clock(23, 59),
        weekdays=range(7),
        **extra,
    ):
        location = Location.objects.create(
            name=name or f"Location {next(_counter)}", time_zone=time_zone, **extra
        )
        for weekday in weekdays:
            OpeningHours.objects.create(
                location=location, weekday=weekday, opens=opens, closes=closes
            )
        return location

    return make


@pytest.fixture
def make_space(db, make_location):
    def make(
        location: Location | None = None,
        *,
        name: str | None = None,
        kind: str = SpaceKind.ROOM,
        capacity: int = 4,
        **extra,
    ):
        return Space.objects.create(
            location=location or make_location(),
            name=name or f"Room {next(_counter)}",
            kind=kind,
            capacity=capacity,
            **extra,
        )

    return make


def midday_zone() -> str:
    """A fixed-offset time zone where it is about midday now. A test that books at the real
    time uses it for its location, so that bookings a few hours either side of now stay inside
    one local day whenever the suite runs (in London a booking from 23:40 would cross
    midnight and be refused)."""
    offset = 12 - datetime.now(UTC).hour  # Etc/GMT-5 is UTC+5: the sign is reversed
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def local(location: Location, day, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock(hour, minute), tzinfo=ZoneInfo(location.time_zone))


def next_weekday(weekday: int, *, weeks_ahead: int = 1):
    """A date ``weeks_ahead`` weeks from now on the given weekday (0=Monday)."""
    today = datetime.now(ZoneInfo("UTC")).date()
    return today + timedelta(days=(weekday - today.weekday()) % 7 + 7 * weeks_ahead)


@pytest.fixture
def make_reservation(make_user, make_space):
    def make(
        space: Space | None = None,
        *,
        user=None,
        start: datetime | None = None,
        minutes: int = 60,
        **kwargs,
    ):
        space = space or make_space()
        user = user or make_user()
        start = start or local(space.location, next_weekday(1), 10)
        return services.book(
            actor=user, space=space, start=start, end=start + timedelta(minutes=minutes), **kwargs
        ).reservations[0]

    return make


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def endpoints_allowed(*origins: str) -> Iterator[None]:
    """``PROVIDER_ENDPOINT_ALLOWLIST`` plus ``origins`` (a sandbox's base URL) until the block
    ends, as whoever deploys Reserva next to the sandbox sets it (make run does)."""
    allowlist = [*settings.PROVIDER_ENDPOINT_ALLOWLIST, *origins]
    with override_settings(PROVIDER_ENDPOINT_ALLOWLIST=allowlist):
        yield


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONPATH=str(ROOT),
        DEBUG="true",
        PGAPPNAME="test-subprocess",
        # A worker reaches the sandboxes this process allowed.
        PROVIDER_ENDPOINT_ALLOWLIST=",".join(settings.PROVIDER_ENDPOINT_ALLOWLIST),
    )
    env.update(extra)
    return env


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return None


@pytest.fixture
def make_provider(db):
    """A factory of Microsoft 365 providers, each with its own connection and credential
    aliases, for tests of rules, admin pages and the portal that never call the provider (the
    sandbox-backed ones are ``ms_provider`` and ``google_provider`` in tests/calendars)."""
    from calendars.models import CalendarProvider, ConnectionAlias, CredentialAlias, ProviderKind

    made = itertools.count(1)

    def make(*, name: str = "M365", **extra) -> CalendarProvider:
        n = next(made)
        suffix = "" if n == 1 else f"-{n}"
        return CalendarProvider.objects.create(
            name=name if n == 1 else f"{name} {n}",
            kind=ProviderKind.MICROSOFT,
            connection=ConnectionAlias.objects.create(
                name=f"graph{suffix}", kind=ProviderKind.MICROSOFT
            ),
            credential=CredentialAlias.objects.create(
                name=f"app{suffix}", kind=ProviderKind.MICROSOFT, tenant_id="t", client_id="c"
            ),
            **extra,
        )

    return make


@pytest.fixture
def provider(make_provider):
    """One Microsoft 365 provider, with a delegate mailbox for the calendars of people."""
    return make_provider(delegated_user_email="delegate@example.com")
