"""``make run``'s stack (config/runstack.py) stops within five seconds of Ctrl+C, in a few lines,
without a segmentation fault and without leaving a process behind.

A real process test: web, Celery worker, beat and the sandbox are started as ``make run`` starts
them, on free ports and in a folder of their own (``VAR_DIR``), then the terminal's Ctrl+C is
imitated: SIGINT to the supervisor's process group. Takes about 15 s (most of it start-up).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 120  # a loaded CI machine
STOP_LIMIT_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_pids(sid: int) -> set[int]:
    """Every live process of a session (the supervisor's and its children's groups)."""
    out = subprocess.run(
        ["ps", "-e", "-o", "pid=,sid=,stat="], capture_output=True, text=True, check=True
    ).stdout
    found = set()
    for line in out.splitlines():
        pid, session, stat = line.split(None, 2)
        if int(session) == sid and not stat.startswith("Z"):
            found.add(int(pid))
    return found


def _up(web: int, sandbox: int, log: Path) -> bool:
    text = log.read_text(errors="replace") if log.exists() else ""
    if "ready." not in text or "beat: Starting" not in text:
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/healthz", timeout=2):
            pass
        socket.create_connection(("127.0.0.1", sandbox), timeout=2).close()
    except OSError:
        return False
    return True


def test_the_stack_stops_within_five_seconds_of_ctrl_c(tmp_path):
    web, sandbox = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "DEBUG": "true",
        "VAR_DIR": str(tmp_path / "var"),  # its own SQLite, broker queue and mail
        "CACHE_URL": "locmemcache://",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web}",
        "PROVIDER_ENDPOINT_ALLOWLIST": f"https://127.0.0.1:{sandbox}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    (tmp_path / "var").mkdir()  # as `make run` makes var/ before it starts the stack
    log = tmp_path / "stack.log"
    command = [
        sys.executable, "-m", "config.runstack", "--port", str(web),
        "--sandbox-port", str(sandbox), "--sandbox-state-dir", str(tmp_path / "sandbox"),
        "--beat-schedule", str(tmp_path / "beat-schedule"),
    ]  # fmt: skip
    with log.open("wb") as out:
        # A session of its own, as a terminal gives make: the supervisor is its foreground group.
        stack = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _up(web, sandbox, log):
            assert stack.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.25)
        started = session_pids(stack.pid)
        assert len(started) >= 7  # supervisor, worker + its pool, beat, listener, sandbox, web
        lines_before = len(log.read_text(errors="replace").splitlines())

        began = time.monotonic()
        os.killpg(stack.pid, signal.SIGINT)  # Ctrl+C: the terminal signals the foreground group
        while session_pids(stack.pid) and time.monotonic() - began < 15:
            time.sleep(0.05)
        took = time.monotonic() - began
    finally:
        for pid in session_pids(stack.pid):  # never leave a process behind, even on failure
            os.kill(pid, signal.SIGKILL)
    stack.wait(timeout=5)

    said = log.read_text(errors="replace")
    after = said.splitlines()[lines_before:]
    assert took < STOP_LIMIT_SECONDS, f"stopped in {took:.1f} s:\n" + "\n".join(after[-40:])
    assert stack.returncode == 0
    assert "Segmentation fault" not in said
    assert said.count("Warm shutdown") <= 1
    assert len(after) < 40, "\n".join(after)
    assert "Stopped in" in said


def test_favicon_ico_leads_to_the_portal_icon():
    response = Client().get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("portal/favicon.svg")
