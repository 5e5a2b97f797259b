"""Benchmark session: shared fixtures, one results table printed at the end and written to docs/benchmarks.md.

Run with ``make bench`` (``pytest tests/benchmarks -o addopts="" -s``); ``make test`` ignores this folder.
Every benchmark records rows with :func:`benchlib.record`; a benchmark that raises gets an ``error`` row.
``docs/benchmarks.md`` is only rewritten by a complete run (every ``test_bench_*.py`` collected, nothing
deselected); ``--bench-output PATH`` writes elsewhere, ``--bench-strict`` makes a missed target fail the session.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import benchlib
import pytest

DOC = benchlib.REPO / "docs" / "benchmarks.md"
ARTIFACT = benchlib.REPO / "tests" / "artifacts" / "benchmarks.json"
FINDINGS = benchlib.HERE / "findings.md"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bria-bench")
    group.addoption("--bench-output", default=None, help="write the Markdown report here instead of docs/")
    group.addoption("--bench-strict", action="store_true", help="fail the session when a target is missed")


def pytest_configure(config: pytest.Config) -> None:
    benchlib.SESSION.update(started=time.monotonic(), machine=benchlib.machine_description(), deselected=0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the benchmarks in the issue's order (``SECTION = "1. ..."`` of each module); others keep theirs."""
    items.sort(key=lambda item: str(getattr(getattr(item, "module", None), "SECTION", "~"))
               if _is_benchmark(item) else "~")
    benchlib.SESSION["modules"] = {Path(str(item.path)).name for item in items if _is_benchmark(item)}


def _all_modules_collected() -> bool:
    """Whether every ``test_bench_*.py`` of the suite was collected (a run of one file is a partial run too)."""
    wanted = {p.name for p in benchlib.HERE.glob("test_bench_*.py")}
    return wanted <= set(benchlib.SESSION.get("modules", ()))


def _is_benchmark(item: pytest.Item) -> bool:
    return benchlib.HERE in Path(str(item.path)).resolve().parents


def pytest_deselected(items: list[pytest.Item]) -> None:
    benchlib.SESSION["deselected"] = benchlib.SESSION.get("deselected", 0) + len(items)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and _is_benchmark(item):
        section = getattr(item.module, "SECTION", item.module.__name__)
        text = str(call.excinfo.value) if call.excinfo else report.longreprtext[-300:]
        benchlib.record_error(section, f"{item.name} failed", "", text)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not benchlib.RESULTS:
        return
    duration = time.monotonic() - benchlib.SESSION.get("started", time.monotonic())
    table = benchlib.render_table(benchlib.RESULTS)
    print(f"\n\nBria provider benchmarks ({duration / 60:.1f} min)\n{table}\n", flush=True)
    machine = dict(benchlib.SESSION.get("machine", {}))
    if hasattr(os, "getloadavg"):
        machine["Load average at end (1/5/15 min)"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    findings = FINDINGS.read_text() if FINDINGS.exists() else ""
    output = session.config.getoption("--bench-output")
    complete = not benchlib.SESSION.get("deselected") and not session.config.getoption("keyword") and (
        session.testscollected > 0 and _all_modules_collected()
    )
    target = Path(output) if output else (DOC if complete else None)
    if target is None:
        print("Partial benchmark run: docs/benchmarks.md left unchanged (use --bench-output PATH)", flush=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(benchlib.render_markdown(machine, benchlib.RESULTS, duration=duration, findings=findings,
                                                   baseline=benchlib.load_baseline()))
        print(f"Report written to {target}", flush=True)
    # the machine-readable copy goes with the page: a partial run never overwrites the complete run's copy
    artifact = ARTIFACT if target == DOC else (target.with_suffix(".json") if target is not None else None)
    if artifact is not None:
        with contextlib.suppress(OSError):
            artifact.parent.mkdir(parents=True, exist_ok=True)
            artifact.write_text(json.dumps({"machine": machine, "duration_s": duration,
                                            "results": [vars(r) for r in benchlib.RESULTS]}, indent=2))
    if session.config.getoption("--bench-strict") and any(r.status != benchlib.MET and r.target
                                                          for r in benchlib.RESULTS):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch folder for the session (test images are generated once into it; ~5 GB, removed at the end)."""
    folder = tmp_path_factory.mktemp("bench")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def use_emulator() -> Callable[[Any], contextlib.AbstractContextManager[None]]:
    """``with use_emulator(emu):`` points ``bria_default`` at ``emu``."""
    return benchlib.bria_connection


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        return

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):
            super().handle()


@pytest.fixture(scope="session")
def static_server(bench_dir: Path) -> Iterator[tuple[Path, str]]:
    """``(folder, base_url)``: a threaded ``http.server`` on 127.0.0.1 serving a staging folder (for bulk zips)."""
    folder = bench_dir / "staging"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="bench-static", daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
