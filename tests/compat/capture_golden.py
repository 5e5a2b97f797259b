"""Write the golden in-flight state of a provider release into ``tests/compat/golden/``.

Run it once per release whose in-flight state later code must resume (the committed copies are from release
0.1.0, commit a9ee78f)::

    git archive a9ee78f | tar -x -C /tmp/rel
    PYTHONPATH=/tmp/rel .venv/bin/python tests/compat/capture_golden.py tests/compat/golden

It records, with every host faked: the trigger kwargs of the training, bulk-upload and job triggers (as
``serialize()`` returns them, which is what Airflow stores), the resume state the generation operator hands
its trigger, the sidecar files of the submitted jobs, and the first event each trigger fires.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared test kit

import golden_scenarios as gs  # noqa: E402


def _setenv(name: str, value: str) -> None:
    os.environ[name] = value


def _dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def capture(out: Path) -> None:
    """Capture every golden record into ``out``."""
    import airflow_provider_bria
    from airflow_provider_bria.triggers.training import BriaTrainingTrigger

    release = {"version": airflow_provider_bria.__version__, "module": airflow_provider_bria.__file__,
               "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "out"
        with gs.sync_host(_setenv):
            job = gs.deferral(gs.generation_operator(folder), gs.make_context())
            upload = gs.deferral(gs.upload_operator(), gs.make_context())
        for name, deferred in (("job_trigger", job), ("upload_trigger", upload)):
            classpath, kwargs = deferred.trigger.serialize()
            _dump(out / f"{name}.json", {"classpath": classpath, "kwargs": kwargs,
                                         "method_name": deferred.method_name})
            _dump(out / f"{name}_event.json", gs.first_event(deferred.trigger))
        for sidecar in sorted(folder.glob("*.json")):
            _dump(out / "sidecars" / sidecar.name, json.loads(sidecar.read_text()))
    training = BriaTrainingTrigger(**gs.training_trigger_kwargs(time.time() + 7200))
    classpath, kwargs = training.serialize()
    _dump(out / "training_trigger.json", {"classpath": classpath, "kwargs": kwargs,
                                          "method_name": "execute_complete"})
    _dump(out / "training_trigger_event.json", gs.first_event(training))
    _dump(out / "release.json", release)


if __name__ == "__main__":
    capture(Path(sys.argv[1]))
