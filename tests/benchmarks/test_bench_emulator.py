"""5. Emulator capacity: requests per second on loopback for a read and a write endpoint.

The load comes from a few keep-alive ``http.client`` connections (much cheaper per request than ``requests``,
so the client is not what is measured), each in its own thread, for a few seconds per endpoint.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import benchlib
from benchlib import record

SECTION = "5. Emulator capacity"
CLIENTS = 4
SECONDS = 5.0


def _hammer(url: str, token: str, make_request: Callable[[int], tuple[str, str, bytes | None]],
            expected: int) -> tuple[float, int, float]:
    """Send requests from CLIENTS connections for SECONDS; return ``(requests/s, errors, mean latency ms)``."""
    parts = urlsplit(url)
    counter = itertools.count()
    stop = threading.Event()
    done: list[int] = []
    errors: list[int] = []
    latency: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        n = bad = 0
        spent = 0.0
        while not stop.is_set():
            method, path, body = make_request(next(counter))
            headers = {"api_token": token}
            if body is not None:
                headers["Content-Type"] = "application/json"
            sent = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            spent += time.perf_counter() - sent
            n += 1
            bad += resp.status != expected
        conn.close()
        with lock:
            done.append(n)
            errors.append(bad)
            latency.append(spent)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join(60)
    elapsed = time.perf_counter() - started
    total = sum(done)
    return total / elapsed, sum(errors), 1000 * sum(latency) / max(1, total)


def test_emulator_capacity(emulator: Any) -> None:
    model_id = benchlib.training_models(emulator, 1)[0]  # one model of a completed dataset (the shared set-up)
    before = emulator.state()["counts"]["projects"]
    read_rps, read_err, read_ms = _hammer(
        emulator.url, emulator.token, lambda n: ("GET", f"/v1/tailored-gen/models/{model_id}", None), 200)

    def create_project(n: int) -> tuple[str, str, bytes]:
        body = {"project_name": f"capacity-{n}", "ip_medium": "illustration", "ip_type": "stylized_scene"}
        return "POST", "/v1/tailored-gen/projects", json.dumps(body).encode()

    write_rps, write_err, write_ms = _hammer(emulator.url, emulator.token, create_project, 201)
    created = emulator.state()["counts"]["projects"] - before
    assert read_err == 0
    assert write_err == 0
    assert created >= write_rps * SECONDS * 0.9  # every answered write was applied
    record(SECTION, "Read: GET /v1/tailored-gen/models/{id}", read_rps, "{:.0f} req/s",
           notes=f"{CLIENTS} keep-alive connections for {SECONDS:g} s; mean latency {read_ms:.1f} ms; "
                 f"{read_err} errors")
    record(SECTION, "Write: POST /v1/tailored-gen/projects", write_rps, "{:.0f} req/s",
           notes=f"{CLIENTS} keep-alive connections for {SECONDS:g} s; mean latency {write_ms:.1f} ms; {created} "
                 f"projects created, {write_err} errors")
