"""The sidecar module owns the output-folder metadata format and its status vocabulary."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from airflow_provider_bria._state import STATE_VERSION_KEY, STATE_VERSIONS, StateVersionError
from airflow_provider_bria.operators import _sidecar as sidecar
from airflow_provider_bria.operators._sidecar import SidecarStatus

PACKAGE = Path(__file__).resolve().parents[3] / "airflow_provider_bria"
GOLDEN = Path(__file__).resolve().parents[2] / "compat" / "golden" / "sidecars"


def test_sidecars_of_release_0_1_0_are_read() -> None:
    paths = sorted(GOLDEN.glob("*.json"))
    assert paths
    for path in paths:
        side = sidecar.decode(path.read_bytes())
        assert side is not None
        assert sidecar.status_of(side) is SidecarStatus.SUBMITTED
        assert side["request_id"] == json.loads(path.read_text())["request_id"]


def test_encode_stamps_the_version_and_round_trips() -> None:
    data = sidecar.encode({"status": SidecarStatus.COMPLETED.value, "seed": 3})
    raw = json.loads(data)
    assert raw[STATE_VERSION_KEY] == STATE_VERSIONS["sidecar"]
    assert list(raw) == sorted(raw)  # keys sorted: stable files
    assert sidecar.decode(data) == {"status": "completed", "seed": 3}


def test_unreadable_unknown_and_newer_sidecars() -> None:
    assert sidecar.decode(b"not json") is None
    assert sidecar.decode(b"[1, 2]") is None
    assert sidecar.decode(b"\xff\xfe") is None
    assert sidecar.status_of({"status": "weird"}) is None
    assert sidecar.status_of(None) is None
    newer = json.dumps({"status": "submitted", STATE_VERSION_KEY: STATE_VERSIONS["sidecar"] + 1}).encode()
    with pytest.raises(StateVersionError):
        sidecar.decode(newer)


def test_read_if_and_write_through_a_folder(tmp_path: Path) -> None:
    from airflow_provider_bria.operators._outputs import OutputFolder

    folder = OutputFolder(f"file://{tmp_path}")
    sidecar.write(folder, "a", SidecarStatus.GENERATED, urls=["u"], seeds="not a list")
    assert json.loads((tmp_path / "a.json").read_text())["status"] == "generated"
    assert sidecar.read_if(folder, "a", SidecarStatus.COMPLETED) == {}
    side = sidecar.read_if(folder, "a", *sidecar.URLS_REUSABLE)
    assert sidecar.saved_list(side, "urls") == ["u"]
    assert sidecar.saved_list(side, "seeds") == []  # a sidecar is user-editable data
    assert sidecar.read(folder, "missing") == {}


def test_the_vocabulary_is_the_one_on_disk() -> None:
    # the values other tools and older releases read: changing one breaks resumption of existing folders
    assert {s.value for s in SidecarStatus} == {"submitted", "generated", "completed", "url_unusable"}


def _status_literals(path: Path) -> list[int]:
    """Lines of ``path`` where a dict literal holds ``"status": "<sidecar status>"``."""
    values = {s.value for s in SidecarStatus}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (isinstance(key, ast.Constant) and key.value == "status" and isinstance(value, ast.Constant)
                        and value.value in values):
                    found.append(node.lineno)
        if isinstance(node, ast.Compare) and any(isinstance(c, ast.Constant) and c.value in values
                                                 for c in node.comparators):
            found.append(node.lineno)
    return found


@pytest.mark.parametrize("module", ["operators/generation.py", "operators/_generation_base.py",
                                    "operators/_generation_files.py", "plugins/outputs.py"])
def test_no_module_spells_sidecar_statuses_itself(module: str) -> None:
    assert _status_literals(PACKAGE / module) == []
