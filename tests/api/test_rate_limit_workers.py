"""The API's rate limit holds across processes: ``gunicorn --workers 3`` on PostgreSQL + Redis,
``API_RATE_LIMIT=60/minute``, 240 calls with one client's token from several threads; at most
60 get through, whichever worker answers, and the rest are the documented 429. The admin's
sign-in lockout holds there too.

With per-process counters (local memory) each worker would allow its own 60; with DRF's
read-modify-write throttle on a shared cache, simultaneous requests overwrite each other's
count. Both let well over 60 through.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from reservations.models import IntegrationRole
from tests.conftest import ROOT, subprocess_env, wait_for

CALLS = 240
LIMIT = 60


@pytest.fixture
def gunicorn(tmp_path):
    """Three sync workers on a free port, sharing this run's Redis as their cache (a prefix of
    their own, so no earlier run's counters count); stopped and reaped at the end."""
    error_log, access_log = tmp_path / "error.log", tmp_path / "access.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--workers=3",
            "--bind=127.0.0.1:0",
            f"--error-logfile={error_log}",
            f"--access-logfile={access_log}",
            "--access-logformat=%(p)s %(s)s",  # the worker's pid and the status, per request
        ],
        cwd=ROOT,
        env=subprocess_env(
            REDIS_URL=settings.REDIS_URL,
            API_RATE_LIMIT=f"{LIMIT}/minute",
            CACHE_KEY_PREFIX=f"reserva-test:{uuid.uuid4().hex}",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listening() -> str | None:
            text = error_log.read_text() if error_log.exists() else ""
            booted = len(re.findall(r"Booting worker with pid", text))
            found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", text)
            return found.group(1) if found and booted >= 3 else None

        base = wait_for(listening, timeout=60)
        assert base, f"gunicorn did not start:\n{error_log.read_text()}"
        yield base, access_log
    finally:
        server.terminate()  # graceful: the workers finish and close their database sessions
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_rate_limit_holds_across_three_gunicorn_workers(gunicorn, as_integration):
    base, access_log = gunicorn
    client = as_integration(IntegrationRole.READ_ONLY)
    headers = {"Authorization": client._credentials["HTTP_AUTHORIZATION"]}

    def call(_: int) -> requests.Response:
        return requests.get(f"{base}/api/v1/locations/", headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(call, range(CALLS)))

    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {200, 429}, statuses
    assert 0 < statuses[200] <= LIMIT, statuses
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.headers["Content-Type"] == "application/json"
        assert refused.json()["error"]["code"] == "throttled"
        assert int(refused.headers["Retry-After"]) > 0
    # The calls were answered by more than one worker: the limit held across processes.
    served_by = {line.split()[0] for line in access_log.read_text().splitlines() if line}
    assert len(served_by) > 1, served_by


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_admin_lockout_holds_across_gunicorn_workers(gunicorn, make_user):
    base, _ = gunicorn
    staff = make_user("ops", is_staff=True, is_superuser=True)
    # The server has the production hashers, not the tests' fast one (few rounds: still quick).
    staff.password = PBKDF2PasswordHasher().encode("the-right-one", "saltsaltsalt", 1000)
    staff.save(update_fields=["password"])
    login_page = requests.get(f"{base}/admin/login/", timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)

    def sign_in(password: str) -> requests.Response:
        return requests.post(  # a new connection each time: any worker may answer
            f"{base}/admin/login/?next=/admin/",
            data={"username": "ops", "password": password, "csrfmiddlewaretoken": csrf},
            cookies=login_page.cookies,
            allow_redirects=False,
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        wrong = list(pool.map(sign_in, [f"wrong-{n}" for n in range(50)]))
    assert {response.status_code for response in wrong} == {200}  # the form again, each time
    refused = sign_in("the-right-one")
    assert refused.status_code == 200
    assert "Too many failed login attempts. Try again later." in refused.text
    assert "sessionid" not in refused.cookies
