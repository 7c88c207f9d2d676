"""``make run``'s supervisor: start the provider sandbox and web, then (once both listen) the
Celery worker, Celery beat and the Exchange Server notification listener (``manage.py
ews_listen``), and stop all five within a few seconds on Ctrl+C.

Each process runs in its own process group, so the terminal's Ctrl+C reaches only this
supervisor, which then stops them: SIGTERM to the worker (Celery's warm shutdown), beat, the
listener (whose rooms' locks expire by themselves if it is killed) and web,
SIGKILL to whatever of them still runs ``STOP_SECONDS`` later (the worker's tasks are
acknowledged late or recovered by beat, so killing it loses nothing), then the sandbox, last so
that a task the worker is finishing still reaches it.
A second Ctrl+C kills at once. When one of the five exits by itself (a port in use, a crash),
the others are stopped too and the exit status says so.

It replaces a shell ``trap 'kill 0' EXIT INT TERM``, which signalled its own shell as well,
ran its trap again on that signal, and again: thousands of "Warm shutdown" lines, a worker
left running, and finally bash's own stack overflowing (the segmentation fault).

Usage (the Makefile's ``run`` target): ``python -m config.runstack --host 127.0.0.1 --port 8000
--sandbox-port 8443``. Plain Python, no Django import: it only starts the commands.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Then SIGKILL, and the sandbox gets one more second: the whole stop stays under five seconds.
# Celery's warm shutdown alone takes 5-8 s with the embedded filesystem broker (its loop polls),
# so an idle worker is usually killed.
STOP_SECONDS = 3.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(self.process.pid, sig)

    def group_alive(self) -> bool:
        """Whether anything of this process group still runs (runserver's reloader child and
        the worker's pool processes included)."""
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        self.process.poll()  # reap the leader, if it is done, so it stops counting
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True


def commands(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """The five processes of ``make run``, with this interpreter and its Celery."""
    python = sys.executable
    celery = str(Path(python).with_name("celery"))
    state = args.sandbox_state_dir
    sandbox = [python, "manage.py", "run_sandbox", "--port", str(args.sandbox_port)]
    sandbox += ["--state-dir", state]
    config = Path(state) / "demo-config.json"
    if config.exists():
        sandbox += ["--config", str(config)]
    return [
        ("sandbox", sandbox),
        ("web", [python, "manage.py", "runserver", f"{args.host}:{args.port}"]),
        ("worker", [celery, "-A", "config", "worker", "-Q", "default,sync", "--loglevel=INFO",
                    "--concurrency=2", "--hostname=worker@%h"]),
        ("beat", [celery, "-A", "config", "beat", "--loglevel=INFO",
                  f"--schedule={args.beat_schedule}"]),
        ("ews-listen", [python, "manage.py", "ews_listen"]),
    ]  # fmt: skip


# The servers start first, and the worker once they listen: its first tasks (the webhook
# subscriptions) make the sandbox call the web's webhook endpoint back, which failed with
# "Webhook trouble" (and a retry 30 s later) while runserver was still starting.
SERVERS = ("sandbox", "web")
LISTEN_SECONDS = 60.0


def listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_listening(children: list[Child], ports: list[tuple[str, int]]) -> None:
    """Until every (host, port) accepts connections, one of the children exits, or
    ``LISTEN_SECONDS`` pass (the rest start anyway: their tasks retry)."""
    deadline = time.monotonic() + LISTEN_SECONDS
    while time.monotonic() < deadline:
        if any(child.process.poll() is not None for child in children):
            return
        if all(listening(host, port) for host, port in ports):
            return
        time.sleep(0.2)


def start(specs: list[tuple[str, list[str]]]) -> list[Child]:
    children = []
    for name, command in specs:
        # process_group=0: its own group, out of the terminal's foreground group, so Ctrl+C
        # (and a second one) is this supervisor's alone to act on.
        process = subprocess.Popen(command, process_group=0)  # noqa: S603 - our own commands
        children.append(Child(name, process))
    return children


def stop(children: list[Child], grace: float = STOP_SECONDS) -> list[str]:
    """Stop the worker, beat and web first (SIGTERM), the sandbox last, so a task the worker is
    finishing still reaches it; SIGKILL what still runs after ``grace`` seconds (at once on
    another Ctrl+C). Returns the names of the ones that had to be killed."""
    hurry = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: hurry.update(now=True))
    first = [child for child in children if child.name != "sandbox"]
    last = [child for child in children if child.name == "sandbox"]
    killed = _stop_group(first, time.monotonic() + grace, hurry)
    killed += _stop_group(last, time.monotonic() + 1.0, hurry)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=2)
    return killed


def _stop_group(children: list[Child], deadline: float, hurry: dict[str, bool]) -> list[str]:
    for child in children:
        if child.name == "worker":
            # Celery's main process stops its own pool (warm shutdown); a SIGTERM straight to
            # the pool's processes would be logged as errors.
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        else:
            child.signal_group(signal.SIGTERM)  # runserver's reloader and its server process
    while time.monotonic() < deadline and not hurry["now"]:
        if not any(child.group_alive() for child in children):
            break
        time.sleep(0.05)
    killed = [child.name for child in children if child.group_alive()]
    for child in children:
        if child.name in killed:
            child.signal_group(signal.SIGKILL)
    return killed


class Interrupted(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--sandbox-port", type=int, default=8443)
    parser.add_argument("--sandbox-state-dir", default="var/sandbox")
    parser.add_argument("--beat-schedule", default="var/celerybeat-schedule")
    args = parser.parse_args(argv)

    def interrupt(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    children: list[Child] = []
    status = 0
    try:
        specs = commands(args)
        children = start([spec for spec in specs if spec[0] in SERVERS])
        wait_listening(children, [("127.0.0.1", args.sandbox_port), (args.host, args.port)])
        children += start([spec for spec in specs if spec[0] not in SERVERS])
        while True:
            ended = [child for child in children if child.process.poll() is not None]
            if ended:
                names = ", ".join(f"{c.name} (exit {c.process.returncode})" for c in ended)
                print(f"\n  Stopped by itself: {names}; stopping the others.", flush=True)
                status = 1
                break
            time.sleep(0.2)
    except Interrupted:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    began = time.monotonic()
    print("\n  Stopping web, worker, beat, listener and sandbox...", flush=True)
    killed = stop(children)
    took = time.monotonic() - began
    note = ""
    if killed:
        note = (
            f" ({', '.join(killed)} killed after {STOP_SECONDS:.0f} s; beat picks up any lost work)"
        )
    print(f"  Stopped in {took:.1f} s{note}.", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
