"""One-command smoke check of the choices that cannot be verified offline, against the real Bria API.

Run it yourself with your own token (it is never run in CI)::

    BRIA_SMOKE_API_TOKEN=<your api_token> python -m airflow_provider_bria.smoke            # read-only
    BRIA_SMOKE_API_TOKEN=<your api_token> python -m airflow_provider_bria.smoke --write    # + upload encodings

Read-only checks: the ``api_token`` header is accepted (``GET /v1/tailored-gen/projects`` answers a list) and
an unknown v2 request id answers the documented ``404 {"status": "NOT_FOUND"}``. With ``--write`` it also
creates a project and a draft dataset named ``airflow-provider-bria-smoke-<time>``, uploads one generated
1024x1024 PNG with each ``upload_image`` encoding (JSON base64, then multipart), reports which one the server
accepts, and deletes the dataset and the project again. Nothing paid (training, generation) is ever started.

The token is read only from ``BRIA_SMOKE_API_TOKEN`` (the script refuses to run without it, so it can never
pick up a token by accident); ``BRIA_SMOKE_HOST`` overrides the API base URL. The token is sent only to that
host and never printed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

TOKEN_VAR = "BRIA_SMOKE_API_TOKEN"  # noqa: S105 (the variable name, not a token)
HOST_VAR = "BRIA_SMOKE_HOST"
CONN_ID = "bria_smoke"
EXIT_REFUSED = 2


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1024, 1024), (40, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


def _check(name: str, func: Callable[[], str], results: list[tuple[str, bool, str]]) -> None:
    try:
        results.append((name, True, func()))
    except Exception as err:  # noqa: BLE001 - every failure is reported, the script goes on
        results.append((name, False, f"{type(err).__name__}: {err}"))


def run(write: bool, out: Any = None) -> int:
    """Run the checks with the token of ``BRIA_SMOKE_API_TOKEN``; return the process exit code.

    :param write: also create and delete a project and dataset to try both upload encodings.
    :param out: where the report goes (default ``sys.stdout``).
    """
    out = out if out is not None else sys.stdout
    token = os.environ.get(TOKEN_VAR, "").strip()
    if not token:
        print(f"Refusing to run: set {TOKEN_VAR} to your Bria api_token (this check talks to the real API; "
              "it never runs in CI and never reads any other variable for the token).", file=out)
        return EXIT_REFUSED
    from airflow_provider_bria.contract import DEFAULT_HOST

    host = os.environ.get(HOST_VAR, "").strip() or DEFAULT_HOST
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps({"conn_type": "bria", "host": host,
                                                                 "password": token})
    from airflow_provider_bria.hooks.bria import BriaHook

    results: list[tuple[str, bool, str]] = []
    with BriaHook(bria_conn_id=CONN_ID, retry_limit=2) as hook:
        _check("auth + list projects", lambda: f"{len(hook.list_projects())} project(s) listed", results)

        def unknown_status() -> str:
            resp = hook.get_status(f"smoke-{uuid.uuid4().hex}")
            if resp.status.value != "NOT_FOUND":
                raise AssertionError(f"expected NOT_FOUND, got {resp.status.value} ({resp.raw})")
            return "404 NOT_FOUND as documented"

        _check("v2 status of an unknown id", unknown_status, results)
        if write:
            _write_checks(hook, results)
    for name, ok, detail in results:
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}", file=out)
    return 0 if all(ok for _, ok, _ in results) else 1


def _write_checks(hook: Any, results: list[tuple[str, bool, str]]) -> None:
    name = f"airflow-provider-bria-smoke-{int(time.time())}"
    project = hook.create_project(name, "photography", "stylized_scene",
                                  project_description="temporary: airflow-provider-bria smoke check")
    try:
        dataset = hook.create_dataset(project["id"], name)
        try:
            png = _png()
            for encoding in ("json", "multipart"):
                _check(f"upload_image encoding={encoding}",
                       lambda enc=encoding: "accepted, image id "
                       f"{hook.upload_image(dataset['id'], file=png, image_name=f'{enc}.png', encoding=enc).get('id')}",
                       results)
        finally:
            hook.delete_dataset(dataset["id"])
    finally:
        hook.delete_project(project["id"])


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point.

    :param argv: arguments (default ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_bria.smoke", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true",
                        help="also create/delete a temporary project and dataset to try both upload encodings")
    args = parser.parse_args(argv)
    return run(args.write)


if __name__ == "__main__":
    sys.exit(main())
