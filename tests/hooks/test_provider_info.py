"""Packaging: entry point, provider info schema, every listed class path imports, UI metadata in sync, cheap import."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_bria.get_provider_info as gpi
from airflow_provider_bria import __version__
from airflow_provider_bria.hooks.bria import BriaHook

STANDARD_FIELDS = {"host", "schema", "login", "password", "port", "extra", "description"}


def _entry_point() -> Any:
    eps = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_bria")]
    assert len(eps) == 1, eps
    return eps[0]


def test_entry_point_loads_provider_info() -> None:
    info = _entry_point().load()()
    assert info["package-name"] == "airflow-provider-bria"
    assert info["versions"] == [__version__]
    conn = info["connection-types"][0]
    assert (conn["connection-type"], conn["hook-class-name"]) == ("bria", "airflow_provider_bria.hooks.bria.BriaHook")


def test_provider_info_matches_airflow_schema() -> None:
    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(gpi.get_provider_info(), schema)


def _class_paths(info: dict[str, Any]) -> list[str]:
    paths: list[str] = []
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info.get(section, []):
            paths.extend(entry["python-modules"])
    paths.extend(c["hook-class-name"] for c in info.get("connection-types", []))
    paths.extend(info.get("extra-links", []))
    return paths


@pytest.mark.parametrize("path", _class_paths(gpi.get_provider_info()))
def test_every_listed_class_path_imports(path: str) -> None:
    try:
        obj: Any = importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name != path:
            raise
        module, _, name = path.rpartition(".")
        obj = getattr(importlib.import_module(module), name)
    assert obj is not None


def test_hook_class_attributes_match_provider_info() -> None:
    conn = gpi.get_provider_info()["connection-types"][0]
    assert BriaHook.conn_type == conn["connection-type"] == "bria"
    assert BriaHook.hook_name == conn["hook-name"]
    assert BriaHook.default_conn_name == "bria_default"
    assert BriaHook.conn_name_attr == "bria_conn_id"


def test_ui_field_behaviour_matches_provider_info() -> None:
    behaviour = BriaHook.get_ui_field_behaviour()
    assert behaviour == {
        "hidden_fields": gpi.UI_FIELD_BEHAVIOUR["hidden-fields"],
        "relabeling": gpi.UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": gpi.UI_FIELD_BEHAVIOUR["placeholders"],
    }
    assert set(behaviour["hidden_fields"]) <= STANDARD_FIELDS
    assert set(behaviour["relabeling"]) <= STANDARD_FIELDS
    assert set(behaviour["placeholders"]) <= STANDARD_FIELDS | set(gpi.CONN_FIELDS)
    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "customized_form_field_behaviours.schema.json").read_text())
    jsonschema.validate(behaviour, schema)


def test_connection_form_widgets_match_conn_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """FAB/wtforms are optional in Airflow 3; stand-ins record what the hook builds from CONN_FIELDS."""

    class Field:
        def __init__(self, label: str, **kwargs: Any) -> None:
            self.label, self.kwargs = label, kwargs

    modules = {
        "flask_appbuilder": types.ModuleType("flask_appbuilder"),
        "flask_appbuilder.fieldwidgets": types.ModuleType("flask_appbuilder.fieldwidgets"),
        "flask_babel": types.ModuleType("flask_babel"),
        "wtforms": types.ModuleType("wtforms"),
        "wtforms.validators": types.ModuleType("wtforms.validators"),
    }
    modules["flask_appbuilder.fieldwidgets"].BS3TextFieldWidget = object  # type: ignore[attr-defined]
    modules["flask_babel"].lazy_gettext = lambda s: f"i18n:{s}"  # type: ignore[attr-defined]
    modules["wtforms"].StringField = Field  # type: ignore[attr-defined]
    modules["wtforms.validators"].Optional = lambda: "optional"  # type: ignore[attr-defined]
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    widgets = BriaHook.get_connection_form_widgets()
    assert set(widgets) == set(gpi.CONN_FIELDS)
    for name, field in widgets.items():
        assert field.label == f"i18n:{gpi.CONN_FIELDS[name]['label']}"
        assert field.kwargs["description"] == gpi.CONN_FIELDS[name]["description"]
        assert field.kwargs["validators"] == ["optional"]


def test_connection_form_widgets_without_fab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wtforms", None)
    assert BriaHook.get_connection_form_widgets() == {}


def test_conn_fields_are_the_extras_the_hook_reads() -> None:
    from airflow_provider_bria.hooks._connection import settings_from_connection

    values = {"console_url": "https://console.example", "timeout": 12, "retry_budget": 90,
              "upload_encoding": "multipart"}
    assert set(values) == set(gpi.CONN_FIELDS)
    s = settings_from_connection(host=None, schema=None, port=None, password="t", extra=values)
    assert (s.console_url, s.read_timeout, s.retry_budget, s.upload_encoding) == (
        "https://console.example", 12.0, 90.0, "multipart")


def test_airflow_providers_manager_registers_the_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "airflow-provider-bria" in pm.providers
    assert {"extra__bria__console_url", "extra__bria__timeout"} <= set(pm.connection_form_widgets)
    assert pm.field_behaviours["bria"]["relabeling"] == gpi.UI_FIELD_BEHAVIOUR["relabeling"]


def test_importing_the_package_and_hook_stays_light() -> None:
    code = (
        "import sys, airflow_provider_bria, airflow_provider_bria.hooks.bria, airflow_provider_bria.responses\n"
        "bad = [m for m in ('fastapi', 'uvicorn', 'starlette', 'airflow_provider_bria.emulator', 'PIL', 'requests')"
        " if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == ""
