"""The built wheel installs with plain pip next to the oldest supported Airflow and registers as a provider.

Not in the default run (it builds a wheel, creates a venv and downloads Airflow with pip from the package
index: minutes, and needs the registry). ``make test-compat`` runs it; alone:
``.venv/bin/python -m pytest tests/packaging -o addopts=""``. ``BRIA_WHEEL_AIRFLOW`` picks another Airflow
release (default: the oldest supported, :data:`airflow_provider_bria._compat.MIN_AIRFLOW_VERSION`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bria import __version__
from airflow_provider_bria._compat import MIN_AIRFLOW_VERSION
from airflow_provider_bria.get_provider_info import get_provider_info

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = os.environ.get("BRIA_WHEEL_AIRFLOW", MIN_AIRFLOW_VERSION)
#: Bounds the pip install of Airflow (a cold download of ~200 packages on a 2-core machine).
INSTALL_TIMEOUT = 900

pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from the work tree by the PEP 517 backend (what ``make dist`` does)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    (found,) = out.glob("airflow_provider_bria-*.whl")
    return found


@pytest.fixture(scope="module")
def clean_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fresh venv (plain ``venv`` + pip, no lock, no extras) holding only Airflow ``AIRFLOW`` and the wheel."""
    root = tmp_path_factory.mktemp("clean-venv")
    venv.EnvBuilder(with_pip=True, clear=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"apache-airflow=={AIRFLOW}", str(wheel)],
        check=True, timeout=INSTALL_TIMEOUT,
    )
    home = root / "airflow-home"
    home.mkdir()
    return {"python": python, "airflow": root / "venv" / "bin" / "airflow", "home": home}


def _run(env: dict[str, Path], *args: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    environ.update(AIRFLOW_HOME=str(env["home"]), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    done = subprocess.run(args, env=environ, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _json(text: str) -> Any:
    """The JSON document of a CLI's ``-o json`` output (Airflow 3.0 logs INFO lines to stdout before it)."""
    (line,) = [ln for ln in text.splitlines() if ln.startswith(("[{", "{", "[]"))][-1:]
    return json.loads(line)


def test_wheel_holds_the_package_and_py_typed_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"airflow_provider_bria", f"airflow_provider_bria-{__version__}.dist-info"}, tops
    assert "airflow_provider_bria/py.typed" in names
    assert "airflow_provider_bria/_compat.py" in names
    assert not [n for n in names if "/tests/" in n or n.endswith((".md", ".lock"))]
    entry_points = zipfile.ZipFile(wheel).read(f"airflow_provider_bria-{__version__}.dist-info/entry_points.txt")
    assert b"provider_info = airflow_provider_bria.get_provider_info:get_provider_info" in entry_points


def test_clean_install_has_the_pinned_airflow_and_no_emulator_extra(clean_env: dict[str, Path]) -> None:
    out = _run(clean_env, str(clean_env["python"]), "-c", (
        "import importlib.metadata as m, importlib.util as u, sys;"
        "import airflow_provider_bria.hooks.bria, airflow_provider_bria.operators.generation,"
        " airflow_provider_bria.operators.training, airflow_provider_bria.sensors.training,"
        " airflow_provider_bria.triggers.training;"
        "print(m.version('apache-airflow'), m.version('airflow-provider-bria'),"
        " 'airflow_provider_bria.emulator' in sys.modules)"
    ))
    assert out.split()[-3:] == [AIRFLOW, __version__, "False"]


def test_airflow_providers_get_shows_every_component(clean_env: dict[str, Path]) -> None:
    info = _json(_run(clean_env, str(clean_env["airflow"]), "providers", "get", "airflow-provider-bria",
                           "--full", "-o", "json"))
    assert info, "airflow providers get printed nothing"
    shown = info[0] if isinstance(info, list) else info
    text = json.dumps(shown)
    expected = get_provider_info()
    assert shown.get("Version", shown.get("version")) == __version__ or __version__ in text
    modules = [m for section in ("hooks", "operators", "sensors", "triggers") for e in expected[section]
               for m in e["python-modules"]]
    for name in [*modules, *expected["extra-links"], "airflow_provider_bria.hooks.bria.BriaHook", '"bria"']:
        assert name.strip('"') in text, f"{name} missing from `airflow providers get`"


def test_airflow_imports_the_hook_link_and_triggers(clean_env: dict[str, Path]) -> None:
    hooks = _json(_run(clean_env, str(clean_env["airflow"]), "providers", "hooks", "-o", "json"))
    (bria,) = [h for h in hooks if h.get("connection_type") == "bria"]
    assert bria["class"] == "airflow_provider_bria.hooks.bria.BriaHook"
    assert bria["package_name"] == "airflow-provider-bria"
    links = _run(clean_env, str(clean_env["airflow"]), "providers", "links", "-o", "json")
    assert "airflow_provider_bria.links.bria.BriaModelLink" in links
    triggers = _run(clean_env, str(clean_env["airflow"]), "providers", "triggers", "-o", "json")
    assert "airflow_provider_bria.triggers.training" in triggers


def test_provider_info_validates_against_that_airflows_schema(clean_env: dict[str, Path]) -> None:
    out = _run(clean_env, str(clean_env["python"]), "-c", (
        "import json, pathlib, airflow, jsonschema;"
        "from airflow_provider_bria.get_provider_info import get_provider_info;"
        "schema = json.loads((pathlib.Path(airflow.__file__).parent / 'provider_info.schema.json').read_text());"
        "jsonschema.validate(get_provider_info(), schema); print('valid', airflow.__version__)"
    ))
    assert out.split()[-2:] == ["valid", AIRFLOW]
