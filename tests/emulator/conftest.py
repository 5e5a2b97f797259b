"""Fixtures of the emulator contract tests: a raw-HTTP client, test images (``file_server``: tests/conftest.py).

Helpers live in ``emulator_helpers.py`` (importable from the tests of this folder).
"""

from __future__ import annotations

from typing import Any

import pytest
from emulator_helpers import COLORS, Api, make_image


@pytest.fixture
def images() -> list[bytes]:
    """Five distinct 1024x1024 PNGs."""
    return [make_image(c) for c in COLORS[:5]]


@pytest.fixture
def api(emulator: Any) -> Api:
    """A raw-HTTP client of the (reset) shared emulator."""
    return Api(emulator.url, emulator.token)


@pytest.fixture
def fast(emulator: Any) -> Any:
    """The shared emulator with short training (0.3 s) and job (0.1 s) times (restored by the next reset)."""
    emulator.set_timing(training_seconds=0.3, job_seconds=0.1)
    return emulator
