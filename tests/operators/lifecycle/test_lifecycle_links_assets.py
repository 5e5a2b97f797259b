"""Console URL helpers, extra links (reading XCom) and the model asset helpers."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_bria.assets import (
    bria_dataset_asset,
    bria_model_asset,
    dataset_asset_uri,
    model_asset_extra,
    model_asset_uri,
    model_id_from_asset_events,
    parse_model_asset_uri,
)
from airflow_provider_bria.contract import DEFAULT_CONSOLE_URL
from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.get_provider_info import get_provider_info
from airflow_provider_bria.links.bria import (
    BriaDatasetLink,
    BriaModelLink,
    BriaProjectLink,
    dataset_console_url,
    model_console_url,
    project_console_url,
    push_console_xcoms,
)
from airflow_provider_bria.operators.captions import BriaRegenerateCaptionsOperator
from airflow_provider_bria.operators.dataset import BriaCreateDatasetOperator
from airflow_provider_bria.operators.model import BriaCreateModelOperator
from airflow_provider_bria.operators.project import BriaCreateProjectOperator


def test_console_urls_default_and_override() -> None:
    assert project_console_url(None, 3) == f"{DEFAULT_CONSOLE_URL}/tailored-generation/projects/3"
    assert dataset_console_url("https://console.example/", 3, 4) == (
        "https://console.example/tailored-generation/projects/3/datasets/4"
    )
    assert model_console_url("https://console.example", "3", "9") == (
        "https://console.example/tailored-generation/projects/3/models/9"
    )


def test_push_console_xcoms_pushes_ids_and_urls(make_context: Any) -> None:
    ctx = make_context()
    pushed = push_console_xcoms(ctx, "https://c.example", project_id=1, dataset_id=2, model_id=3)
    assert ctx["ti"].xcoms == pushed
    assert pushed["project_url"] == "https://c.example/tailored-generation/projects/1"
    assert pushed["dataset_url"] == "https://c.example/tailored-generation/projects/1/datasets/2"
    assert pushed["model_url"] == "https://c.example/tailored-generation/projects/1/models/3"
    ctx2 = make_context()
    push_console_xcoms(ctx2, None, project_id=None, model_id=3)
    assert ctx2["ti"].xcoms == {"model_id": 3}  # no URL without the project id


@pytest.mark.parametrize(
    ("link", "key"),
    [(BriaProjectLink(), "project_url"), (BriaDatasetLink(), "dataset_url"), (BriaModelLink(), "model_url")],
)
def test_links_read_their_xcom_key(monkeypatch: pytest.MonkeyPatch, link: Any, key: str) -> None:
    from airflow.sdk.execution_time.xcom import XCom

    seen: dict[str, Any] = {}
    stored = {"project_url": "https://console.example/p", "dataset_url": "https://console.example/d",
              "model_url": "https://console.example/m"}

    def fake_get_value(*, ti_key: Any, key: str) -> Any:
        seen["ti_key"], seen["key"] = ti_key, key
        return stored.get(key)

    monkeypatch.setattr(XCom, "get_value", fake_get_value)
    ti_key = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1, try_number=1)
    assert link.get_link(operator=None, ti_key=ti_key) == stored[key]
    assert seen == {"ti_key": ti_key, "key": key}
    monkeypatch.setattr(XCom, "get_value", lambda **_: None)
    assert link.get_link(operator=None, ti_key=ti_key) == ""


def test_links_are_registered_and_attached() -> None:
    registered = get_provider_info()["extra-links"]
    for cls in (BriaProjectLink, BriaDatasetLink, BriaModelLink):
        assert f"{cls.__module__}.{cls.__qualname__}" in registered
    names = {type(link) for link in BriaCreateModelOperator.operator_extra_links}
    assert names == {BriaProjectLink, BriaDatasetLink, BriaModelLink}
    assert {type(link) for link in BriaCreateProjectOperator.operator_extra_links} == {BriaProjectLink}
    assert BriaDatasetLink in {type(link) for link in BriaCreateDatasetOperator.operator_extra_links}
    assert BriaDatasetLink in {type(link) for link in BriaRegenerateCaptionsOperator.operator_extra_links}
    assert len({link.name for link in BriaCreateModelOperator.operator_extra_links}) == 3


def test_model_asset_uri_quotes_names() -> None:
    asset = bria_model_asset("Brand X", "v2/final")
    assert asset.uri == "bria://models/Brand%20X/v2%2Ffinal"
    assert asset.name == asset.uri
    assert parse_model_asset_uri(asset.uri) == ("Brand X", "v2/final")
    assert bria_model_asset("Brand X", "v2/final") == asset  # stable identity for schedules


@pytest.mark.parametrize(("project", "model"), [("", "m"), ("p", "  "), (None, "m")])
def test_model_asset_requires_names(project: Any, model: Any) -> None:
    with pytest.raises(BriaInputError):
        model_asset_uri(project, model)


def test_dataset_asset_quotes_names_and_is_distinct_from_the_model_asset() -> None:
    asset = bria_dataset_asset("Brand X", "ds/2024 #1")
    assert asset.uri == "bria://datasets/Brand%20X/ds%2F2024%20%231"
    assert asset.name == asset.uri
    assert bria_dataset_asset("Brand X", "ds/2024 #1") == asset  # stable identity for schedules
    assert bria_dataset_asset("bria-demo", "demo-dataset").uri == "bria://datasets/bria-demo/demo-dataset"
    assert bria_dataset_asset("p", "same").uri != bria_model_asset("p", "same").uri


@pytest.mark.parametrize(("project", "dataset"), [("", "d"), ("p", "  "), (None, "d")])
def test_dataset_asset_requires_names(project: Any, dataset: Any) -> None:
    with pytest.raises(BriaInputError, match="name a Bria"):
        dataset_asset_uri(project, dataset)


def test_parse_model_asset_uri_rejects_other_uris() -> None:
    with pytest.raises(BriaInputError):
        parse_model_asset_uri("s3://bucket/key")


def test_model_asset_extra() -> None:
    model = {"id": "12", "name": "m", "status": "Completed", "project_id": 3, "dataset_id": 4,
             "training_version": "fibo", "training_parameters": {"rank": 128}, "description": None}
    extra = model_asset_extra(model, project_name="Brand X", model_url="https://c/m", run="x")
    assert extra["model_id"] == 12
    assert extra["status"] == "Completed"
    assert extra["project_name"] == "Brand X"
    assert extra["model_url"] == "https://c/m"
    assert extra["run"] == "x"
    assert "training_parameters" not in extra
    assert "description" not in extra
    with pytest.raises(BriaInputError):
        model_asset_extra({"name": "no id"})


def _event(uri: str, model_id: Any, minute: int) -> Any:
    return SimpleNamespace(asset=SimpleNamespace(uri=uri), extra={"model_id": model_id},
                           timestamp=datetime(2026, 1, 1, 0, minute, tzinfo=timezone.utc))


class _AssetKeyed(dict):  # type: ignore[type-arg]
    """``context["triggering_asset_events"]``: keyed by asset. Assets are hashable only from Airflow 3.2, so the
    pairs are kept in a list and looked up by equality (what Airflow's own accessor does on older lines)."""

    def __init__(self, pairs: list[tuple[Any, list[Any]]]) -> None:
        super().__init__()
        self.pairs = pairs

    def __getitem__(self, key: Any) -> list[Any]:
        return next(v for k, v in self.pairs if k == key)

    def items(self) -> Any:
        return iter(self.pairs)


def test_model_id_from_asset_events_picks_the_newest() -> None:
    a = bria_model_asset("p", "m")
    from airflow.sdk import Asset

    other = Asset("s3://x/y")
    events = _AssetKeyed([(a, [_event(a.uri, 5, 2), _event(a.uri, 6, 1)]), (other, [_event("s3://x/y", 99, 9)])])
    assert model_id_from_asset_events(events) == 5
    assert model_id_from_asset_events(events, a) == 5
    assert model_id_from_asset_events({}, a) is None
    assert model_id_from_asset_events(None) is None
    flat = [_event(a.uri, 7, 1), _event(a.uri, 8, 3), _event("s3://x/y", 99, 9)]
    assert model_id_from_asset_events(flat) == 8
    assert model_id_from_asset_events([{"asset": {"uri": a.uri}, "extra": {"model_id": "41"}}], a) == 41
