"""The Bria overview route (emulator through the ``bria_default`` connection), failures, and plugin registration."""

from __future__ import annotations

import html
import logging
import re
import socket
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from generation_helpers import run_test_dag, train_model
from kit import TEST_TOKEN as TOKEN
from kit import conn_json

from airflow_provider_bria.plugins import bria_status


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    bria_status.clear_cache()
    yield
    bria_status.clear_cache()


@pytest.fixture
def trained(bria_conn: Any) -> dict[str, Any]:
    """A project, dataset and Completed model in the (reset) emulator."""
    from airflow_provider_bria.hooks.bria import BriaHook

    hook = BriaHook()
    model_id = train_model(hook, bria_conn)
    model = hook.get_model(model_id)
    return {"model": model, "dataset": hook.get_dataset(model["dataset_id"], max_images=1)}


def test_overview_lists_projects_datasets_models(admin: Any, trained: dict[str, Any]) -> None:
    resp = admin.get("/bria/overview")
    assert resp.status_code == 200, resp.text
    page = resp.text
    model, dataset = trained["model"], trained["dataset"]
    row = re.search(rf"<tr class=model data-model-id='{model['id']}'>(.*?)</tr>", page, re.S)
    assert row, page
    assert f"<td class=model-status>{model['status']}</td>" in row.group(1)
    assert f"<td class=model-name>{model['name']}</td>" in row.group(1)
    ds = re.search(rf"<tr><td>{dataset['id']}</td><td>{dataset['name']}</td><td>(\w+)</td><td>(\d+)</td>"
                   r"<td>(yes|no)</td>", page)
    assert ds, page
    assert ds.group(1) == dataset["status"]
    assert int(ds.group(2)) == dataset["images_count"]
    assert ds.group(3) == ("yes" if dataset.get("visual_schema") else "no")
    assert TOKEN not in page


def test_overview_is_cached_briefly(admin: Any, trained: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = bria_status._fetch
    monkeypatch.setattr(bria_status, "_fetch", lambda conn: calls.append(conn) or real(conn))
    assert admin.get("/bria/overview").status_code == 200
    assert admin.get("/bria/overview").status_code == 200
    assert calls == ["bria_default"]
    assert admin.get("/bria/overview?refresh=true").status_code == 200
    assert len(calls) == 2
    monkeypatch.setattr(bria_status, "CACHE_SECONDS", 0.0)
    monkeypatch.setenv("AIRFLOW__BRIA__UI_CACHE_SECONDS", "0")
    assert admin.get("/bria/overview").status_code == 200
    assert len(calls) == 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        (None, "The Airflow connection 'bria_default' is not defined"),
        ("wrong-token", "Bria refused the api_token of connection 'bria_default'"),
        ("unreachable", "Bria is unreachable through connection 'bria_default'"),
    ],
)
def test_overview_explains_failures(admin: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch, conn: str | None,
                                    message: str) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_BRIA_DEFAULT", raising=False)
    secret = "sk-wrong-secret-123456"
    if conn == "wrong-token":
        monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(emulator.url, secret))
    elif conn == "unreachable":
        monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(f"http://127.0.0.1:{_free_port()}", secret))
    resp = admin.get("/bria/overview")
    assert resp.status_code == 502
    assert message in html.unescape(resp.text)
    assert secret not in resp.text


def test_overview_links_the_run_that_trained_a_model(admin: Any, client: Any, token: Any, trained: dict[str, Any],
                                                    tmp_path: Path, denied_dags: set[str]) -> None:
    """A model asset event emitted by a task: "trained by" links its run; start = the task's start."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    from airflow_provider_bria.assets import model_asset_uri

    model = trained["model"]
    run = run_test_dag("generation_deferrable", {"model_id": model["id"], "output_path": "file://" + str(tmp_path)})
    uri = model_asset_uri("Gen Brand", f"overview-{model['id']}")
    with create_session() as session:
        asset = AssetModel(uri=uri, name=uri, group="asset")
        session.add(asset)
        session.flush()
        session.add(AssetEvent(asset_id=asset.id, extra={"model_id": model["id"], "status": "Completed"},
                               source_dag_id=run.dag_id, source_run_id=run.run_id, source_task_id="images",
                               source_map_index=-1))
    page = admin.get("/bria/overview").text
    row = re.search(rf"<tr class=model data-model-id='{model['id']}'>(.*?)</tr>", page, re.S).group(1)
    assert f"href='/dags/generation_deferrable/runs/{run.run_id.replace(':', '%3A').replace('+', '%2B')}'" in row
    assert uri in row
    assert re.search(r"<td>\d+m \d\ds</td>", row)  # elapsed between the task's start and the event
    denied_dags.add("generation_deferrable")
    client.headers["Authorization"] = f"Bearer {token('viewer')}"
    bria_status.clear_cache()
    row = re.search(rf"<tr class=model data-model-id='{model['id']}'>(.*?)</tr>", client.get("/bria/overview").text,
                    re.S).group(1)
    assert "/dags/generation_deferrable" not in row
    assert "a DAG you cannot read" in row


def test_failed_generation_task_says_why(admin: Any, bria_conn: Any, tmp_path: Path) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    model_id = train_model(BriaHook(), bria_conn, complete=False)  # Created, never trained
    run = run_test_dag("generation_fanout", {"model_id": model_id, "output_path": "file://" + str(tmp_path / "o")})
    assert run.tasks == {"generate": "failed"}
    page = admin.get(f"/bria/gallery/generation_fanout/{run.run_id}/generate").text
    assert "(failed)" in page
    assert "The task failed before any file was written" in page


def test_entry_point_registers_the_plugin_and_the_api_server_mounts_it(api_app: Any) -> None:
    from airflow import plugins_manager

    eps = [ep for ep in entry_points(group="airflow.plugins") if ep.name == "bria"]
    assert [ep.value for ep in eps] == ["airflow_provider_bria.plugins:BriaPlugin"]
    if hasattr(plugins_manager, "_get_plugins"):  # Airflow 3.2+
        plugins = {p.name: p for p in plugins_manager._get_plugins()[0]}
        views, _ = plugins_manager._get_ui_plugins()
    else:  # Airflow 3.1: module globals
        plugins_manager.ensure_plugins_loaded()
        plugins_manager.initialize_ui_plugins()
        plugins = {p.name: p for p in plugins_manager.plugins or []}
        views = plugins_manager.external_views or []
    assert "bria" in plugins
    destinations = {v["destination"]: v["href"] for v in views if v["url_route"].startswith("bria")}
    assert destinations == {
        "nav": "/bria/overview",
        "dag_run": "/bria/gallery/{DAG_ID}/{RUN_ID}",
        "task_instance": "/bria/gallery/{DAG_ID}/{RUN_ID}/{TASK_ID}?map_index={MAP_INDEX}",
    }
    mounts = [getattr(r, "path", None) for r in api_app.routes]
    assert "/bria" in mounts
    # Airflow's own schema of the plugins endpoint accepts what the plugin declares
    from airflow.api_fastapi.core_api.datamodels.plugins import PluginResponse

    info = [i for i in plugins_manager.get_plugin_info() if i["name"] == "bria"][0]
    assert PluginResponse.model_validate(info).name == "bria"


def test_older_airflow_lines_skip_the_plugin_with_one_log_line(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    import airflow_provider_bria.plugins as plugin_module

    assert plugin_module.supported((3, 1))
    assert not plugin_module.supported((3, 0))
    monkeypatch.setattr(plugin_module, "airflow_version", lambda: (3, 0))
    with caplog.at_level(logging.INFO, logger=plugin_module.__name__):
        plugin = plugin_module.BriaPlugin()
    assert plugin.external_views == []
    assert plugin.fastapi_apps == []
    lines = [r for r in caplog.records if r.name == plugin_module.__name__]
    assert len(lines) == 1
    assert "skipped" in lines[0].getMessage()
