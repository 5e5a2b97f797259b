"""0. Harness: the helpers the benchmarks rely on compute what they claim (fast; no figures recorded)."""

from __future__ import annotations

import io

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
