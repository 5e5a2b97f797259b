"""Import-time probe: what importing the provider costs a process that already imported ``airflow.sdk``.

The parent imports ``airflow.sdk`` only; each forked child then times importing the provider's DAG-facing
modules: the hook, every operator and sensor module listed by ``get_provider_info``, the links and the assets
helpers (trigger modules are left out: only the triggerer needs them, unless an operator imports one).
Baseline children time an empty step, so the difference is the provider's own cost. Run with
``-X importtime`` to get the per-module breakdown of the first child.

Prints one JSON line. Usage: ``python -X importtime import_probe.py REPS``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import time
from typing import Any

import airflow.sdk  # noqa: F401  (the baseline: what every DAG file imports anyway)


def provider_modules() -> list[str]:
    """The provider's DAG-facing modules (``get_provider_info`` is a tiny module without imports)."""
    from airflow_provider_bria.get_provider_info import get_provider_info

    info = get_provider_info()
    mods = ["airflow_provider_bria"]
    for kind in ("hooks", "operators", "sensors"):
        for entry in info.get(kind, []):
            mods += entry["python-modules"]
    return [*mods, "airflow_provider_bria.links.bria", "airflow_provider_bria.assets"]


def child(mods: list[str], breakdown: bool) -> dict[str, Any]:
    """Time importing ``mods`` (nothing for the baseline); with ``breakdown`` capture ``-X importtime``."""
    log_path = None
    if breakdown:
        fd, log_path = tempfile.mkstemp(suffix=".importtime")
        os.dup2(fd, 2)
    started, cpu_started = time.perf_counter(), time.process_time()
    for mod in mods:
        importlib.import_module(mod)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    out: dict[str, Any] = {"seconds": seconds, "cpu": cpu}
    if log_path:
        sys.stderr.flush()
        rows = []
        with open(log_path) as fh:
            for line in fh:
                if not line.startswith("import time:") or "|" not in line:
                    continue
                _, self_us, cum_us, name = (part.strip() for part in [line[:12], *line[12:].split("|")])
                if self_us.isdigit():
                    last = line.rsplit("|", 1)[1]
                    rows.append({"module": name, "self_us": int(self_us), "cumulative_us": int(cum_us),
                                 "depth": (len(last) - len(last.lstrip()) - 1) // 2})
        os.unlink(log_path)
        out["modules"] = rows
    return out


def in_child(func: Any) -> dict[str, Any]:
    """Run ``func()`` in a forked child; return its dict (through a pipe)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            payload = func()
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            payload = {"error": f"{type(err).__name__}: {err}"}
        os.write(write_fd, json.dumps(payload).encode())
        os.close(write_fd)
        os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"error": "child died"}')


def main() -> None:
    reps = int(sys.argv[1])
    mods = provider_modules()
    provider: list[dict[str, float]] = []
    baseline: list[dict[str, float]] = []
    first = in_child(lambda: child(mods, True))
    if "error" in first:
        raise SystemExit(first["error"])
    for rep in range(reps):
        order = [(provider, mods), (baseline, [])]
        if rep % 2:
            order.reverse()
        for bucket, what in order:
            out = in_child(lambda w=what: child(w, False))
            if "error" in out:
                raise SystemExit(out["error"])
            bucket.append({"seconds": out["seconds"], "cpu": out["cpu"]})
    print(json.dumps({"modules": mods, "provider": provider, "baseline": baseline,
                      "first": {"seconds": first["seconds"], "cpu": first["cpu"]},
                      "breakdown": first.get("modules", [])}))


if __name__ == "__main__":
    main()
