"""``python -m integrations.sandbox [--port] [--state-dir] [--config]``: run the sandbox alone.

The same as ``python manage.py run_sandbox``, without needing Django settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .config import load_config
from .testing import start_sandbox


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8443, help="port on 127.0.0.1 (0 = any)")
    parser.add_argument(
        "--state-dir", default="var/sandbox", help="where the CA and server certificate live"
    )
    parser.add_argument("--config", default=None, help="JSON file merged over the defaults")


def serve(port: int, state_dir: str, config_path: str | None, out=sys.stdout) -> None:
    """Run until interrupted, printing where to point the clients."""
    handle = start_sandbox(Path(state_dir), load_config(config_path), port=port)
    out.write(
        f"Sandbox listening on {handle.base_url}\n"
        f"  CA file (trust it as a CA bundle): {handle.ca_file}\n"
        f"  Control page: {handle.base_url}/_sandbox/\n"
        "Press Ctrl+C to stop.\n"
    )
    out.flush()
    try:
        handle.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m integrations.sandbox")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(args.port, args.state_dir, args.config)


if __name__ == "__main__":
    main()
