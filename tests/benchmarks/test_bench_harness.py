"""0. Harness: the helpers the benchmarks rely on compute what they claim (fast; no figures recorded)."""

from __future__ import annotations

import io
from pathlib import Path

import benchlib
import pytest
from benchlib import png_bytes, rolling_max

SECTION = "0. Harness"


def test_rolling_max_counts_events_inside_a_sliding_window() -> None:
    assert rolling_max([0.0, 1.0, 2.0, 3.0], 2.0) == 2
    assert rolling_max([0.0, 0.5, 1.9, 5.0], 2.0) == 3
    even = [float(i) for i in range(61)]  # one every second: 60 fit in [0, 60), the 61st is at 60.0
    assert rolling_max(even, 60.0) == 60
    assert rolling_max([*even[:-1], 59.99], 60.0) == 61


@pytest.mark.parametrize(("channels", "noise", "level"), [(3, 256, 1), (1, 16, 1), (1, 1024, 0)])
def test_generated_pngs_are_valid_distinct_images(channels: int, noise: int, level: int) -> None:
    from PIL import Image

    first = png_bytes(1024, 1024, channels=channels, noise_rows=noise, level=level, tag="a")
    second = png_bytes(1024, 1024, channels=channels, noise_rows=noise, level=level, tag="b")
    assert first != second
    with Image.open(io.BytesIO(first)) as img:
        img.load()
        assert img.size == (1024, 1024)
        assert img.mode == ("RGB" if channels == 3 else "L")
    if level == 0:
        assert len(first) > 1024 * 1024  # stored: as large as the raw pixels


def test_record_compares_against_the_target() -> None:
    before = len(benchlib.RESULTS)
    try:
        assert benchlib.record(SECTION, "le met", 1.0, "{:.1f}", target=("<=", 1.1)).status == benchlib.MET
        assert benchlib.record(SECTION, "ge missed", 0.5, "{:.1f}", target=(">=", 0.8)).status == benchlib.MISSED
        assert benchlib.record(SECTION, "info", 3.0, "{:.1f}").status == benchlib.INFO
        row = benchlib.record(SECTION, "none", None, "{:.1f}", target=("<", 0.2), none_text="not reached",
                              none_status=benchlib.MISSED)
        assert (row.measured, row.status) == ("not reached", benchlib.MISSED)
    finally:
        del benchlib.RESULTS[before:]  # keep the report free of these rows


def _row(name: str, measured: str) -> benchlib.BenchResult:
    return benchlib.BenchResult(section="1. Parse cost", name=name, measured=measured, value=None, target="≤ 1.05×",
                                status=benchlib.MET, notes="a | b")


def test_report_shows_the_baseline_figure_per_row() -> None:
    baseline = {
        "date": "2026-11-25 05:48 UTC",
        "rows": {"Kept row": "1.22×", "Old steady block (after the start-up burst)": "0.31 s",
                 "Longest block, 1000 triggers started at once (poll every 5 s)": "0.99 s", "Old polls": "11.6"},
        "aliases": {"Steady block, 1000 triggers": {"from": "Old steady block (after the start-up burst)"},
                    "Poll ratio": {"from": "Old polls", "before": "0.967×"}},
    }
    rows = [_row("Kept row", "1.04×"), _row("Steady block, 1000 triggers", "0.08 s"), _row("Poll ratio", "1.00×"),
            _row("Longest block, 1,000 triggers started at once", "0.05 s"), _row("Brand-new row", "7")]
    page = benchlib.render_markdown({"CPU": "x"}, rows, duration=60, findings="", baseline=baseline)
    lines = page.splitlines()
    assert "| Benchmark | Before (2026-11-25 05:48 UTC) | Measured | Target | Result | Notes |" in lines
    body = {line.split(" | ")[0][2:]: line.split(" | ")[1:3] for line in lines if line.startswith("| ")}
    assert body["Kept row"] == ["1.22×", "1.04×"]
    assert body["Steady block, 1000 triggers"] == ["0.31 s", "0.08 s"]  # renamed row: explicit alias
    assert body["Poll ratio"] == ["0.967×", "1.00×"]  # old figure in another unit: converted text
    assert body["Longest block, 1,000 triggers started at once"] == ["0.99 s", "0.05 s"]  # reworded label
    assert body["Brand-new row"] == ["new", "7"]  # missing from the baseline
    section = next(line for line in lines if line.startswith("| **1. Parse cost**"))
    header = next(line for line in lines if line.startswith("| Benchmark |"))
    assert section.count("|") == header.count("|")  # every row has the same number of cells
    assert "a \\| b" in page


def test_report_without_a_baseline_keeps_the_old_columns(tmp_path: Path) -> None:
    assert benchlib.load_baseline(tmp_path / "missing.json") is None
    page = benchlib.render_markdown({"CPU": "x"}, [_row("Kept row", "1.04×")], duration=60, findings="")
    assert "| Benchmark | Measured | Target | Result | Notes |" in page.splitlines()
    assert "| Kept row | 1.04× |" in page


def test_committed_baseline_is_the_last_complete_run() -> None:
    """baseline.json holds every row of the 2026-11-25 05:48 UTC run, and each alias names one of them."""
    baseline = benchlib.load_baseline()
    assert baseline is not None
    assert baseline["date"] == "2026-11-25 05:48 UTC"
    assert len(baseline["rows"]) == 18
    assert baseline["rows"]["Example DAGs vs the same DAGs without the provider (same Params, @task functions; "
                            "EmptyOperator for each provider operator)"] == "1.22×"
    for alias in baseline["aliases"].values():
        assert alias["from"] in baseline["rows"], alias
    assert benchlib.before_text(baseline, "Longest event-loop block in steady polling, 1000 triggers") == "0.31 s"
    assert benchlib.before_text(baseline, "Longest event-loop block, 5000 triggers started at once "
                                          "(poll every 5 s)") == "new"


def test_render_rebuilds_the_page_from_a_runs_json(tmp_path: Path) -> None:
    """render.py: the page from a complete run's JSON and the current findings (no new run)."""
    import json

    import render

    rows = [benchlib.BenchResult("9. Test", "a row", "1.00×", "≥ 0.90×", benchlib.MET, "its notes", 1.0)]
    artifact = tmp_path / "run.json"
    artifact.write_text(json.dumps({"machine": {"CPU": "test cpu"}, "duration_s": 90.0,
                                    "results": [vars(r) for r in rows]}))
    findings = tmp_path / "findings.md"
    findings.write_text("## Findings of the test\n")
    text = render.render(artifact, tmp_path / "page.md", findings)
    assert (tmp_path / "page.md").read_text() == text
    assert "test cpu" in text
    assert "## Findings of the test" in text
    assert "| a row | new | 1.00× | ≥ 0.90× | ✅ met | its notes |" in text  # with the Before column
