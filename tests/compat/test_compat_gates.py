"""The Airflow-version gates of ``airflow_provider_bria._compat`` on the running line, and each fallback forced."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import warnings
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_bria import _compat

LAZY_NAMES = sorted(_compat._LAZY)


@pytest.mark.parametrize("name", LAZY_NAMES)
def test_every_lazy_name_resolves_on_this_airflow_without_deprecation_warnings(name: str) -> None:
    import importlib

    module = importlib.reload(_compat)  # forget names resolved by earlier tests
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the newest location is tried first: no deprecated alias is touched
        value = getattr(module, name)
    assert value is not None
    assert getattr(value, "__name__", name) in (name, "SerializedDAG")


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _compat.no_such_name  # noqa: B018


def test_hook_base_has_an_async_connection_lookup_on_every_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_GATES", json.dumps({"conn_type": "bria", "host": "https://h.test",
                                                               "password": "tok-gates"}))
    conn = asyncio.run(BriaHook.aget_connection("bria_gates"))
    assert (conn.host, conn.password) == ("https://h.test", "tok-gates")


class _Accessor:
    """``inlet_events[asset]`` of Airflow >= 3.2: ordered and limited in the database."""

    def __init__(self, events: list[int]) -> None:
        self.events, self.calls = events, []  # type: list[int], list[tuple[str, Any]]

    def ascending(self, ascending: bool) -> _Accessor:
        self.calls.append(("ascending", ascending))
        self.events = sorted(self.events, reverse=not ascending)
        return self

    def limit(self, n: int) -> list[int]:
        self.calls.append(("limit", n))
        return self.events[:n]


def test_latest_asset_events_uses_the_database_ordering_when_airflow_has_it() -> None:
    accessor = _Accessor([1, 3, 2])
    assert _compat.latest_asset_events(accessor) == [3]
    assert accessor.calls == [("ascending", False), ("limit", 1)]


def test_latest_asset_events_falls_back_to_the_list_with_one_warning(caplog: pytest.LogCaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compat, "_warned", set())
    with caplog.at_level(logging.WARNING, logger=_compat.__name__):
        assert _compat.latest_asset_events([1, 2, 3]) == [3]  # Airflow < 3.2: ascending list
        assert _compat.latest_asset_events([1, 2, 3], limit=2) == [3, 2]
        assert _compat.latest_asset_events([]) == []
    warned = [r for r in caplog.records if "ascending()" in r.getMessage()]
    assert len(warned) == 1
    assert _compat.AIRFLOW_VERSION in warned[0].getMessage()


def test_reschedule_date_parses_the_string_airflow_3_0_returns() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert _compat.reschedule_date("2026-01-02T03:04:05Z") == when
    assert _compat.reschedule_date(when) is when
    assert _compat.reschedule_date(None) is None


def test_parsed_reschedule_dates_patches_only_on_airflow_3_0(monkeypatch: pytest.MonkeyPatch) -> None:
    class TI:
        def get_first_reschedule_date(self, context: Any) -> Any:
            return "2026-01-02T03:04:05+00:00"

    ti = TI()
    monkeypatch.setattr(_compat, "AIRFLOW_V_3_1_PLUS", True)
    with _compat.parsed_reschedule_dates(ti):
        assert isinstance(ti.get_first_reschedule_date({}), str)
    monkeypatch.setattr(_compat, "AIRFLOW_V_3_1_PLUS", False)
    with _compat.parsed_reschedule_dates(ti):
        assert ti.get_first_reschedule_date({}) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert isinstance(ti.get_first_reschedule_date({}), str)  # restored afterwards


def test_alias_event_extra_is_made_hashable_only_on_airflow_3_0(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"model_id": 5, "tags": ["a", "b"], "meta": {"k": 1}}
    monkeypatch.setattr(_compat, "AIRFLOW_V_3_1_PLUS", True)
    assert _compat.alias_event_extra(extra) is extra
    monkeypatch.setattr(_compat, "AIRFLOW_V_3_1_PLUS", False)
    hashable = _compat.alias_event_extra(extra)
    assert hashable == {"model_id": 5, "tags": '["a", "b"]', "meta": '{"k": 1}'}
    frozenset(hashable.items())  # what Airflow 3.0 does with it


def test_deferring_a_training_warns_once_where_triggers_have_no_on_kill(monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    from airflow_provider_bria.operators import training

    op = training.BriaStartTrainingOperator(task_id="t", model_id=1, deferrable=True, poll_interval=5, timeout=60)
    op.poll_interval, op.timeout = 5.0, 60.0
    monkeypatch.setattr(_compat, "_warned", set())
    for supported, expected in ((True, 0), (False, 1)):
        monkeypatch.setattr(training, "trigger_on_kill_supported", lambda s=supported: s)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=_compat.__name__), pytest.raises(_compat.TaskDeferred):
            op._defer(1, 0.0)
        assert len([r for r in caplog.records if "on_kill" in r.getMessage()]) == expected


def test_trigger_on_kill_support_follows_the_airflow_line() -> None:
    assert _compat.trigger_on_kill_supported() is _compat.AIRFLOW_V_3_3_PLUS


def test_async_masking_without_amask_secret_runs_the_sync_masker_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before 3.3 there is no ``amask_secret``; 3.0's sync masker reaches the supervisor through AsyncToSync,
    which raises when called on the event loop's thread (found by the real-triggerer test)."""
    import types

    from asgiref.sync import async_to_sync

    from airflow_provider_bria.hooks import _async, bria

    async def send(secret: str) -> None:
        masked.append(secret)

    masked: list[str] = []
    monkeypatch.setitem(sys.modules, "airflow.sdk.log", types.ModuleType("airflow.sdk.log"))  # no amask_secret
    monkeypatch.setattr(bria, "mask", lambda secret: async_to_sync(send)(secret))
    asyncio.run(_async.amask("tok-3-0"))
    assert masked == ["tok-3-0"]


def test_multiple_outputs_replaces_none_only_on_airflow_3_0(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"a": 1, "b": None}
    monkeypatch.setattr(_compat, "AIRFLOW_V_3_1_PLUS", True)
    assert _compat.multiple_outputs(values) is values
    monkeypatch.setattr(_compat, "AIRFLOW_V_3_1_PLUS", False)
    assert _compat.multiple_outputs(values) == {"a": 1, "b": ""}


def test_blank_optional_texts_are_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Airflow 3.0's multiple_outputs fallback hands the project operator: "" means not given."""
    from airflow_provider_bria.operators.project import BriaCreateProjectOperator

    sent: dict[str, Any] = {}

    class Hook:
        console_url = "https://console.test"

        def find_project(self, name: str) -> None:
            return None

        def create_project(self, name: str, medium: str, ip_type: str, **kwargs: Any) -> dict[str, Any]:
            sent.update(kwargs)
            return {"id": 7, "project_name": name}

    op = BriaCreateProjectOperator(task_id="p", project_name="P", ip_type="stylized_scene", ip_medium="illustration",
                                   ip_name="", ip_description=" ", project_description="")
    monkeypatch.setattr(type(op), "hook", property(lambda self: Hook()))
    ti = type("TI", (), {"xcom_push": lambda self, key, value: None})()
    assert op.execute({"ti": ti, "task_instance": ti}) == 7
    assert (sent["ip_name"], sent["ip_description"], sent["project_description"]) == (None, None, None)


@pytest.mark.parametrize("version", ["3.0.6", "3.1.0", "3.1.0rc1", "3.2.0.dev0", "3.2.1+local", "3.10.2",
                                     "3.3.0b2", "3.1", "4.0.0", "v3.2.0", "3.2.post1", "2.11.0"])
def test_version_flags_compare_like_packaging_base_version(version: str) -> None:
    """The flags are computed without ``packaging`` (no ``Version`` built at parse): same answer as its base_version."""
    from packaging.version import Version

    base = Version(Version(version).base_version)
    for minor in (1, 2, 3):
        assert (_compat._release(version) >= (3, minor)) == (base >= Version(f"3.{minor}.0")), (version, minor)


def test_base_hook_is_resolved_on_first_use_and_cached() -> None:
    """``BaseHook`` is not imported with ``_compat`` (DAG parses do not need it) but resolves to Airflow's."""
    try:  # Airflow >= 3.1
        from airflow.sdk import BaseHook
    except ImportError:
        from airflow.hooks.base import BaseHook  # type: ignore[attr-defined,no-redef]

    assert issubclass(_compat.BaseHook, BaseHook)
    assert hasattr(_compat.BaseHook, "aget_connection")
    assert _compat._base_hook() is _compat._base_hook()  # built once per process (the 3.0 shim is a subclass)
    assert "airflow.sdk.bases.hook" in sys.modules or "airflow.hooks.base" in sys.modules
