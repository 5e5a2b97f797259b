"""``make celery``: a distributed Airflow to click through (``python -m airflow_provider_bria.devstack``).

Starts the emulator (or uses the real API when ``BRIA_API_TOKEN`` is set, like ``make airflow``), then
PostgreSQL, Redis, S3 (moto), the scheduler, dag-processor, triggerer, API server and two Celery workers, all on
127.0.0.1, in a fresh ``<repo>/.airflow/celery`` folder. The example DAGs keep their inputs and outputs in
``s3://bria_s3@bria-data/examples`` and ``bria_default`` shares one account-wide limit through Redis. Prints the
UI address and login; Ctrl-C (or SIGTERM, SIGHUP) stops everything by PID.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from typing import Any

from airflow_provider_bria.demo import SERVE_TRAINING_SECONDS, repo_root, start_backend
from airflow_provider_bria.devstack.celery_stack import (
    ADMIN_USER,
    DATA_BUCKET,
    RATE_LIMIT_CONN_ID,
    CeleryStack,
)


def _say(text: str) -> None:
    print(f"[bria-celery] {text}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_bria.devstack",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker (default 2)")
    parser.add_argument("--account-rpm", type=int, default=60,
                        help="account_requests_per_minute of bria_default, shared through Redis (default 60)")
    parser.add_argument("--port", type=int, default=0, help="API server port (default: a free one)")
    parser.add_argument("--training-seconds", type=float, default=SERVE_TRAINING_SECONDS,
                        help=f"emulator training time (default {SERVE_TRAINING_SECONDS:g})")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    :param argv: arguments (default ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    root = repo_root()
    home = root / ".airflow" / "celery"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    stopping = {"flag": False}

    def _on_signal(signum: int, frame: Any) -> None:
        stopping["flag"] = True

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    backend = None
    stack: CeleryStack | None = None
    try:
        backend = start_backend(training_seconds=args.training_seconds, job_seconds=1.0)
        extra = {"account_requests_per_minute": args.account_rpm, "rate_limit_conn_id": RATE_LIMIT_CONN_ID}
        conn = json.dumps({"conn_type": "bria", "host": backend.url, "password": backend.token, "extra": extra})
        stack = CeleryStack(
            home, connections={"bria_default": conn}, dag_folders={"examples": root / "dags"},
            workers=args.workers, concurrency=args.concurrency, paused_at_creation=False, port=args.port,
            extra_env={"AIRFLOW_VAR_BRIA_EXAMPLE_POLL_INTERVAL": "60" if backend.real_api else "1",
                       "BRIA_EXAMPLES_DATA": CeleryStack.s3_uri("examples")},
        )
        _say(f"Starting PostgreSQL, Redis, S3, Airflow and {args.workers} Celery workers in {home} ...")
        started = time.monotonic()
        stack.start()
        _say(f"Ready in {time.monotonic() - started:.0f} s")
        print()
        print("=" * 78)
        print(f"  Airflow UI:     {stack.base_url}")
        print(f"  Login:          {ADMIN_USER} / {stack.password}")
        print(f"  Bria API:       {backend.url}" + ("" if backend.real_api else "  (emulator)"))
        print(f"  S3 (moto):      {stack.s3.endpoint_url}  bucket {DATA_BUCKET}, key id {stack.s3.access_key}")
        print(f"  Workers:        {', '.join(stack.worker_names())}  (logs: {stack.log_dir})")
        print("  Trigger 'bria_dataset_preparation' (demo images are drawn into S3); the rest follows.")
        print("  Press Ctrl-C to stop everything.")
        print("=" * 78, flush=True)
        while not stopping["flag"]:
            stack.check_alive()
            time.sleep(1.0)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        _say("Shutting down...")
        if stack is not None:
            stack.stop()
        if backend is not None:
            backend.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _say("Stopped.")


if __name__ == "__main__":
    sys.exit(main())
