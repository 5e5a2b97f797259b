"""Fixtures of the training tests: a fake task context and models ready to train on the emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from bria_training_helpers import create_trainable_model, make_hook, png_bytes
from kit import context_with


@pytest.fixture
def make_context() -> Callable[..., dict[str, Any]]:
    """Build a minimal task context: ``make_context(try_number=1)``."""

    return context_with


@pytest.fixture(scope="session")
def pngs() -> list[bytes]:
    """Six distinct 1024x1024 PNGs (made once per session)."""
    return [png_bytes(i) for i in range(6)]


@pytest.fixture
def bria_hook(bria_conn: Any) -> Any:
    """A hook on ``bria_default`` (the reset shared emulator)."""
    from airflow_provider_bria.hooks.bria import BriaHook

    return BriaHook()


@pytest.fixture
def model_factory(bria_hook: Any, pngs: list[bytes]) -> Callable[..., dict[str, Any]]:
    """Create a ``Created`` model on the shared emulator: ``model_factory(name="m", training_mode="expert")``."""
    counter = iter(range(10_000))

    def _make(name: str | None = None, training_mode: str = "fully_automated") -> dict[str, Any]:
        n = next(counter)
        return create_trainable_model(bria_hook, pngs, name=name or f"model-{n}", training_mode=training_mode,
                                      project_name=f"training-project-{n}")

    return _make


@pytest.fixture(scope="session")
def slow_emulator(start_emulator: Callable[..., Any]) -> Any:
    """An emulator whose trainings take 120 s: for timeouts, stops and kills (shared by the training tests)."""
    return start_emulator(training_seconds=120)


@pytest.fixture
def slow_hook(slow_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A hook on connection ``bria_slow`` (the slow emulator); the variable is set for the whole test."""
    return make_hook(slow_emulator.url, monkeypatch, conn_id="bria_slow")


_slow_counter = iter(range(1_000_000))


@pytest.fixture
def slow_model_factory(slow_hook: Any, pngs: list[bytes]) -> Callable[..., dict[str, Any]]:
    """Create a ``Created`` model on the slow emulator (unique names; the emulator is not reset)."""

    def _make(training_mode: str = "fully_automated") -> dict[str, Any]:
        n = next(_slow_counter)
        return create_trainable_model(slow_hook, pngs, name=f"slow-{n}", training_mode=training_mode,
                                      project_name=f"slow-project-{n}")

    return _make


@pytest.fixture(scope="session")
def faulty_emulator(start_emulator: Callable[..., Any]) -> Any:
    """An emulator for fault-injection tests (1-second trainings); tests set and clear its faults themselves."""
    return start_emulator(training_seconds=1)
