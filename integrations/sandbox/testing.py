"""Start a sandbox in a background thread, for tests, benchmarks and ``manage.py run_sandbox``.

handle = start_sandbox(tmp_path)          # free port on 127.0.0.1
session = requests.Session()
session.trust_env = False                 # or REQUESTS_CA_BUNDLE overrides verify
session.verify = str(handle.ca_file)
session.get(f"{handle.base_url}/_sandbox/api/state")
handle.stop()
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .server import Sandbox, SandboxHTTPServer, build_server


@dataclass
class SandboxHandle:
    """A running sandbox: where it listens, which CA file to trust, and its live state."""

    base_url: str
    ca_file: Path
    sandbox: Sandbox
    server: SandboxHTTPServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.sandbox.close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(
    state_dir: str | Path,
    config: dict[str, Any] | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
) -> SandboxHandle:
    """Start the sandbox on ``host:port`` (0 = a free port) in a daemon thread."""
    sandbox, server = build_server(state_dir, config, host=host, port=port)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},
        daemon=True,
        name=f"sandbox-{server.server_address[1]}",
    )
    thread.start()
    return SandboxHandle(sandbox.base_url, sandbox.ca_file, sandbox, server, thread)
