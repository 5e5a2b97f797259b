"""``bria-emulator`` / ``python -m airflow_provider_bria.emulator``: run the local Bria API emulator.

The socket is bound before the first line is printed, so ``Bria emulator listening on http://HOST:PORT``
(with the real port when ``--port 0``) means clients can connect right away.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from collections.abc import Sequence
from types import FrameType

from airflow_provider_bria.emulator.settings import (
    DEFAULT_HOST,
    DEFAULT_JOB_SECONDS,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_MAX_ZIP_MB,
    DEFAULT_PORT,
    DEFAULT_TRAINING_SECONDS,
    FETCH_TIMEOUT_SECONDS,
    PATH_VARIANTS,
    Settings,
)

BACKLOG = 2048
TOKEN_ENV = "BRIA_EMULATOR_API_TOKEN"  # noqa: S105 (an environment variable name)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="bria-emulator",
        description="Local emulator of Bria.ai's Tailored Generation API (for demos, tests and CI).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="TCP port; 0 picks a free one (default %(default)s)"
    )
    parser.add_argument(
        "--api-token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"accept only this api_token (default: ${TOKEN_ENV}, else any non-empty token)",
    )
    parser.add_argument(
        "--training-seconds",
        type=_seconds,
        default=DEFAULT_TRAINING_SECONDS,
        help="seconds from start_training to Completed (default %(default)s)",
    )
    parser.add_argument(
        "--job-seconds",
        type=_seconds,
        default=DEFAULT_JOB_SECONDS,
        help="seconds an async v2 job stays IN_PROGRESS (default %(default)s)",
    )
    parser.add_argument(
        "--fault-rate",
        type=_fraction,
        default=0.0,
        help="fraction (0-1) of API requests that fail on purpose (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of faults and unseeded generations")
    parser.add_argument(
        "--state-file", default=None, help="SQLite file holding the state (default: a temporary database)"
    )
    parser.add_argument(
        "--max-zip-mb",
        type=int,
        default=DEFAULT_MAX_ZIP_MB,
        help="largest bulk-upload ZIP fetched, MB (default %(default)s)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=int,
        default=DEFAULT_MAX_BODY_MB,
        help="largest request body accepted, MiB; larger ones get 413 (default %(default)s)",
    )
    parser.add_argument(
        "--fetch-timeout",
        type=_seconds,
        default=FETCH_TIMEOUT_SECONDS,
        help="overall seconds for one image_url fetch, redirects included (default %(default)s)",
    )
    parser.add_argument(
        "--allow-private-fetch",
        action="store_true",
        help="let image_url/zip_url point to private or loopback addresses (tests serve files on 127.0.0.1)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another name accepted in the Host header (repeatable; loopback names and --host always are)",
    )
    parser.add_argument(
        "--retry-after",
        action="store_true",
        help="send Retry-After on injected 429 responses (Bria documents none, so off by default)",
    )
    parser.add_argument(
        "--strict-limits",
        action="store_true",
        help="enforce Bria's word-count guidance on ip_name (1-3) and ip_description (<= 6) as errors",
    )
    parser.add_argument(
        "--path-variants",
        choices=PATH_VARIANTS,
        default="both",
        help="serve the documented bulk-upload/download paths, their other spellings, or both (default %(default)s)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """Parse the command line into :class:`Settings`.

    :param argv: arguments (``sys.argv[1:]`` when ``None``).
    """
    args = build_parser().parse_args(argv)
    return Settings(
        host=args.host,
        port=args.port,
        api_token=args.api_token,
        training_seconds=args.training_seconds,
        job_seconds=args.job_seconds,
        fault_rate=args.fault_rate,
        seed=args.seed,
        state_file=args.state_file,
        access_log=args.access_log,
        max_zip_bytes=args.max_zip_mb * 1024 * 1024,
        max_body_bytes=args.max_body_mb * 1024 * 1024,
        fetch_timeout=args.fetch_timeout,
        allow_private_fetch=args.allow_private_fetch,
        allowed_hosts=tuple(args.allowed_host),
        retry_after=args.retry_after,
        strict_limits=args.strict_limits,
        path_variants=args.path_variants,
    )


def is_loopback(host: str) -> bool:
    """Whether ``--host`` is a loopback interface (``localhost``, ``127.0.0.0/8``, ``::1``).

    :param host: the interface name or address.
    """
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket.

    :param host: interface.
    :param port: port (0 = free port).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def _quiet_server_class(base: type) -> type:
    """A uvicorn ``Server`` that exits with status 0 after SIGTERM/SIGINT instead of re-raising the signal."""

    class QuietServer(base):  # type: ignore[misc,valid-type]
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return QuietServer


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT/SIGTERM.

    :param argv: arguments (``sys.argv[1:]`` when ``None``).
    """
    settings = settings_from_args(argv)
    if not is_loopback(settings.host) and settings.api_token is None:
        print(
            f"bria-emulator: refusing to listen on {settings.host} without a token: anyone on the network could "
            f"use it. Set --api-token (or ${TOKEN_ENV}), or bind a loopback address.",
            file=sys.stderr,
        )
        return 2
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        print(f"bria-emulator: cannot bind {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    import uvicorn

    from airflow_provider_bria.emulator.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        log_level="info" if settings.access_log else "warning",
        access_log=settings.access_log,
        lifespan="off",
        backlog=BACKLOG,
        timeout_graceful_shutdown=3,
        timeout_keep_alive=30,
    )
    server = _quiet_server_class(uvicorn.Server)(config)
    port = sock.getsockname()[1]
    settings.port = port
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"Bria emulator listening on http://{shown}:{port}", flush=True)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
