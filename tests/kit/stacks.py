"""Helpers of the deployment tests (``tests/system``, ``tests/celery``): artefact folders and emulator fleets."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def fresh_artifacts(path: Path) -> Path:
    """Empty ``path`` (a git-ignored folder under ``tests/artifacts``) and create it again.

    :param path: the artefact folder.
    """
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@contextmanager
def emulator_fleet(flags: Mapping[str, Mapping[str, Any]], artifacts: Path) -> Iterator[dict[str, Any]]:
    """Start one emulator process per connection id; at the end save their final state and stop them by PID.

    The states go to ``<artifacts>/emulator-states.json`` (a state that cannot be read is recorded as its error).

    :param flags: ``{conn_id: EmulatorProcess keyword arguments}`` (``api_token``, ``training_seconds``...).
    :param artifacts: the artefact folder.
    """
    from airflow_provider_bria.emulator.process import EmulatorProcess

    procs: dict[str, EmulatorProcess] = {}
    try:
        for name, kwargs in flags.items():
            procs[name] = EmulatorProcess(**kwargs).start()
        yield procs
    finally:
        states: dict[str, Any] = {}
        for name, proc in procs.items():
            try:
                states[name] = proc.state()
            except Exception as err:  # noqa: BLE001 - artefact only
                states[name] = {"error": str(err)}
            proc.stop()
        (artifacts / "emulator-states.json").write_text(json.dumps(states, indent=2, default=str))
