"""Performance regression gate, run by ``make test``: a small, fast subset of ``make bench``.

Each check is a ratio measured side by side in this run (or a memory slope), with a margin of about twice the
``make bench`` target, so a machine under load passes and a 2x regression fails. The figures themselves and
the strict targets live in ``make bench`` (docs/benchmarks.md); this only keeps them from sliding back.

* import cost: CPU to import the provider's DAG-facing modules over ``airflow.sdk``, against the CPU to import
  ``airflow.sdk`` itself (both in fresh processes with a warm bytecode cache);
* parse ratio: the example DAGs against the same DAGs without the provider, in the dag-processor's process
  model (``parse_probe.py``: one forked child per file, CPU time);
* trigger memory: the RSS slope of training triggers (RSS with 250 triggers minus RSS with 50, over 200),
  so the fixed cost of the first trigger (imports, one SSL context) does not count as per-trigger memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchlib
import pytest
from benchlib import median

#: ``make bench`` targets (docs/benchmarks.md) and the gate's margins.
IMPORT_SHARE_MAX = 0.05  # provider import / airflow.sdk import; measured 0.019 idle, 0.025-0.029 under load
PARSE_RATIO_MAX = 1.40  # example / same DAGs without the provider; measured 1.03-1.07 (issue 18); bench target 1.05
TRIGGER_KIB_MAX = 40.0  # KiB per training trigger; bench target 20

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and /proc based probes")


@pytest.fixture(scope="module")
def warm() -> None:
    """Compile Airflow and the provider into the probes' bytecode cache once (a deployed install has .pyc)."""
    benchlib.warm_bytecode()


def _sdk_import_cpu() -> float:
    code = "import time; t = time.process_time(); import airflow.sdk; print(time.process_time() - t)"
    out = subprocess.run([sys.executable, "-c", code], env=benchlib.probe_env(), capture_output=True, text=True,
                         check=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def test_import_cost_share(warm: None) -> None:
    probe = benchlib.run_probe("import_probe.py", ["5"])
    provider = median(r["cpu"] for r in probe["provider"]) - median(r["cpu"] for r in probe["baseline"])
    sdk = median(_sdk_import_cpu() for _ in range(3))
    share = provider / sdk
    print(f"import: provider {provider * 1000:.0f} ms, airflow.sdk {sdk * 1000:.0f} ms, share {share:.3f}")
    assert provider > 0, probe
    assert sdk > 0
    assert share <= IMPORT_SHARE_MAX, (
        f"importing the provider's DAG-facing modules costs {provider * 1000:.0f} ms CPU, {share:.2f}x the import "
        f"of airflow.sdk ({sdk * 1000:.0f} ms); the gate is {IMPORT_SHARE_MAX}x. Breakdown: "
        f"{sorted(probe['breakdown'], key=lambda r: -r['self_us'])[:8]}"
    )


def test_parse_ratio(warm: None, tmp_path: Path) -> None:
    out = benchlib.run_probe("parse_probe.py", [str(benchlib.REPO / "dags"), str(tmp_path), "3"])
    files = out["files"]
    assert files, "no example DAG file found in dags/"
    assert all(f["timetables_match"] for f in files), "the matched DAGs are not scheduled like the examples"
    assert all(f["decorators_match"] for f in files), "the matched DAGs do not use the examples' @task decorators"
    example = sum(median(f["cpu"]["example"]) for f in files)
    matched = sum(median(f["cpu"]["matched"]) for f in files)
    ratio = example / matched
    print(f"parse: example {example * 1000:.0f} ms, matched {matched * 1000:.0f} ms, ratio {ratio:.2f}")
    assert ratio <= PARSE_RATIO_MAX, (
        f"the example DAGs parse in {example * 1000:.0f} ms CPU against {matched * 1000:.0f} ms for the same DAGs "
        f"without the provider: {ratio:.2f}x, the gate is {PARSE_RATIO_MAX}x"
    )


def _rss_with(emu: Any, ids: list[int], folder: Path) -> int:
    """Highest RSS of the triggerer probe over ``len(ids)`` triggers, minus its RSS before them (bytes)."""
    ids_file = folder / f"ids-{len(ids)}.json"
    ids_file.write_text(json.dumps(ids))
    out = benchlib.run_probe(
        "triggerer_probe.py", [str(ids_file), "2", "8"],
        env=benchlib.probe_env({"AIRFLOW_CONN_BRIA_DEFAULT": benchlib.conn_json(emu.url, emu.token)}),
    )
    assert out["event_count"] == 0, f"a trigger fired although every training runs for an hour: {out['events']}"
    return int(max(rss for _, rss in out["rss_samples"]) - out["baseline_rss"])


def test_trigger_memory_slope(warm: None, start_emulator: Callable[..., Any], tmp_path: Path) -> None:
    emu = start_emulator(training_seconds=3600)
    ids = benchlib.training_models(emu, 250)
    small, large = _rss_with(emu, ids[:50], tmp_path), _rss_with(emu, ids, tmp_path)
    polled = {r["path"] for r in emu.requests(path_prefix="/v1/tailored-gen/models/") if r["method"] == "GET"}
    assert len(polled) >= 200, f"only {len(polled)} models were polled: the triggers did not run"
    kib = (large - small) / 200 / 1024
    print(f"trigger memory: 50 -> {small / 1024:.0f} KiB, 250 -> {large / 1024:.0f} KiB, {kib:.1f} KiB each")
    assert kib <= TRIGGER_KIB_MAX, (
        f"each training trigger adds {kib:.1f} KiB of RSS (50 triggers: {small / 1024:.0f} KiB, 250: "
        f"{large / 1024:.0f} KiB over the process baseline); the gate is {TRIGGER_KIB_MAX} KiB"
    )
