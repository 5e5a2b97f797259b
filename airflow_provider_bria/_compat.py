"""Every Airflow import whose location differs between the supported Airflow lines (3.0 to 3.3).

One rule: the newest location first, the older one as the fallback, so the provider runs on every supported
line without deprecation warnings on the newest. Modules of the provider import these names from here and
never from ``airflow`` directly when the name moved; heavy or rarely needed names are behind functions so
importing the provider stays cheap. Behaviour that an older line lacks is shimmed here with one log line
that names the Airflow version (see docs/compatibility.md).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from airflow import __version__ as AIRFLOW_VERSION  # noqa: N812

log = logging.getLogger(__name__)


def _release(version: str) -> tuple[int, ...]:
    """The leading numeric release of a PEP 440 version (``"3.1.0rc1"`` -> ``(3, 1, 0)``), what the flags compare.

    Parsed by hand rather than with ``packaging.version`` so that importing the provider in every forked DAG parse
    builds no ``Version`` objects (a pre-release of 3.2.0 counts as 3.2, as ``Version(...).base_version`` does).

    :param version: a version string such as Airflow's ``__version__``.
    """
    numbers: list[int] = []
    for part in version.strip().lstrip("vV").split("."):
        digits = ""
        for char in part:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        numbers.append(int(digits))
        if len(digits) != len(part):
            break
    return tuple(numbers)


_AIRFLOW_BASE = _release(AIRFLOW_VERSION)

#: The oldest Airflow release the provider supports (also the lower bound in pyproject.toml).
MIN_AIRFLOW_VERSION = "3.0.6"
AIRFLOW_V_3_1_PLUS = _AIRFLOW_BASE >= (3, 1)
AIRFLOW_V_3_2_PLUS = _AIRFLOW_BASE >= (3, 2)
AIRFLOW_V_3_3_PLUS = _AIRFLOW_BASE >= (3, 3)

_C = TypeVar("_C", bound=type)

if TYPE_CHECKING:
    from enum import Enum as EnumBody
else:
    EnumBody = object


class _StrEnum(str, enum.Enum):
    """The base every :func:`str_enum` enum gets (private: the enums behave as ``class X(str, Enum)``)."""


def str_enum(cls: _C) -> _C:
    """Build a ``(str, Enum)`` enum from a class body, ~8x faster than the ``Enum`` metaclass does.

    Write the enum as ``@str_enum`` on ``class Name(str, EnumBody)`` (``EnumBody`` is ``Enum`` for type checkers
    and ``object`` at run time, so the class statement builds a plain class). On Python 3.11+ the members are made by
    the standard library's ``enum._simple_enum`` (how ``http.HTTPStatus`` and ``re.RegexFlag`` are built), without
    the metaclass's per-member checks; the result compares, prints, pickles and looks values up like the class
    statement's. Every forked DAG parse builds the contract's enums, hence the speed. On Python 3.10 the metaclass
    builds it from the same body.

    :param cls: the class body (members, methods, properties, the docstring).
    """
    simple = getattr(enum, "_simple_enum", None)
    if simple is not None:
        return simple(_StrEnum)(cls)  # type: ignore[no-any-return]
    namespace = enum.EnumMeta.__prepare__(cls.__name__, (_StrEnum,))
    for key, value in cls.__dict__.items():
        if key not in ("__dict__", "__weakref__"):
            namespace[key] = value
    return enum.EnumMeta(cls.__name__, (_StrEnum,), namespace)  # type: ignore[return-value]


if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag as DagBag
    from airflow.sdk import AssetOrTimeSchedule as AssetOrTimeSchedule
    from airflow.sdk import BaseHook as BaseHook
    from airflow.sdk import CronTriggerTimetable as CronTriggerTimetable
    from airflow.sdk import conf as conf
    from airflow.sdk.bases.skipmixin import SkipMixin as SkipMixin
    from airflow.sdk.exceptions import (
        AirflowFailException as AirflowFailException,
    )
    from airflow.sdk.exceptions import (
        AirflowNotFoundException as AirflowNotFoundException,
    )
    from airflow.sdk.exceptions import (
        AirflowSensorTimeout as AirflowSensorTimeout,
    )
    from airflow.sdk.exceptions import (
        AirflowSkipException as AirflowSkipException,
    )
    from airflow.sdk.exceptions import (
        AirflowTaskTimeout as AirflowTaskTimeout,
    )
    from airflow.sdk.exceptions import (
        ParamValidationError as ParamValidationError,
    )
    from airflow.sdk.exceptions import TaskDeferred as TaskDeferred
    from airflow.sdk.serde import deserialize as deserialize
    from airflow.sdk.serde import serialize as serialize
    from airflow.serialization.serialized_objects import DagSerialization as DagSerialization
else:
    try:  # Airflow >= 3.2
        from airflow.sdk import conf
    except ImportError:
        from airflow.configuration import conf

    try:  # Airflow >= 3.2
        from airflow.sdk.exceptions import (
            AirflowFailException,
            AirflowNotFoundException,
            AirflowSensorTimeout,
            AirflowSkipException,
            AirflowTaskTimeout,
            ParamValidationError,
        )
    except ImportError:
        from airflow.exceptions import (
            AirflowFailException,
            AirflowNotFoundException,
            AirflowSensorTimeout,
            AirflowSkipException,
            AirflowTaskTimeout,
            ParamValidationError,
        )


@cache
def _base_hook() -> type[Any]:
    """Airflow's ``BaseHook``, with the ``aget_connection`` that 3.1 added on 3.0 (imported when a hook is, not at
    DAG parse: operator modules do not need it)."""
    try:  # Airflow >= 3.1
        from airflow.sdk import BaseHook as sdk_base_hook
    except ImportError:
        from airflow.hooks.base import BaseHook as sdk_base_hook  # type: ignore[attr-defined,no-redef]
    if hasattr(sdk_base_hook, "aget_connection"):
        return sdk_base_hook

    class BaseHook(sdk_base_hook):
        """Airflow 3.0's ``BaseHook`` plus the ``aget_connection`` that 3.1 added (run in a worker thread)."""

        @classmethod
        async def aget_connection(cls, conn_id: str) -> Any:
            """Look the connection up in a thread (Airflow 3.0 has no async lookup).

            :param conn_id: the connection id.
            """
            from asgiref.sync import sync_to_async

            warn_once("aget_connection", "Airflow %s has no async connection lookup: it runs in a worker thread",
                      AIRFLOW_VERSION)
            return await sync_to_async(cls.get_connection)(conn_id)

    BaseHook.__qualname__ = "BaseHook"  # importable as _compat.BaseHook (resolved by the module __getattr__)
    return BaseHook


def has_fs(protocol: str) -> bool:
    """Whether Airflow has an object-storage filesystem registered for ``protocol``.

    :param protocol: a URI scheme such as ``s3`` or ``file``.
    """
    try:  # Airflow >= 3.1
        from airflow.sdk.io import has_fs as _has_fs
    except ImportError:
        from airflow.io import has_fs as _has_fs  # type: ignore[attr-defined,no-redef]
    return bool(_has_fs(protocol))


#: Schemes never opened through fsspec by :func:`object_storage_path`: Airflow's own local ones, and the web
#: (fsspec's HTTP filesystem is read-only and mangles the URI; the newest Airflow refuses ``http://`` as a store too).
_NO_FSSPEC_FALLBACK = frozenset({"file", "local", "http", "https"})


def object_storage_path(uri: str, *, conn_id: str | None = None) -> Any:
    """``ObjectStoragePath(uri, conn_id=conn_id)`` on every line, also for schemes Airflow has no filesystem for.

    From Airflow 3.2 a scheme without an Airflow filesystem (``memory://``, fsspec-only stores) is opened through
    fsspec; 3.0 and 3.1 refuse it ("No filesystem registered"). There the fsspec filesystem of that scheme is
    attached as Airflow's store once (one warning per process); ``http(s)://`` is refused as on the newest line.
    3.0 and 3.1 also render ``memory://x`` as ``memory:///x`` (the same object).

    :param uri: the URI (or local path).
    :param conn_id: Airflow connection of the store, when not in the URI.
    """
    from airflow.sdk import ObjectStoragePath

    if not AIRFLOW_V_3_2_PLUS and "://" in uri and conn_id is None:
        protocol, rest = uri.split("://", 1)
        protocol = protocol.lower()
        if (protocol not in _NO_FSSPEC_FALLBACK and "@" not in rest.split("/", 1)[0]
                and not has_fs(protocol)):
            import fsspec
            from airflow.sdk.io.store import _STORE_CACHE, attach

            cached = _STORE_CACHE.get(protocol)
            if cached is None or getattr(cached, "fs", None) is None:
                _STORE_CACHE.pop(protocol, None)
                attach(protocol, fs=fsspec.filesystem(protocol))
                warn_once(f"fsspec:{protocol}", "Airflow %s has no filesystem for %s://: using fsspec's directly",
                          AIRFLOW_VERSION, protocol)
    return ObjectStoragePath(uri, conn_id=conn_id)


def serde_round_trip(value: Any) -> Any:
    """Serialize and deserialize ``value`` with Airflow's serde (what a trigger's kwargs go through).

    :param value: any value.
    """
    return __getattr__("deserialize")(__getattr__("serialize")(value))


#: Names loaded on first access (PEP 562), newest location first: DAG files and the demo need them, the
#: provider's import does not.
_LAZY: dict[str, tuple[tuple[str, str], ...]] = {
    "AssetOrTimeSchedule": (
        ("airflow.sdk", "AssetOrTimeSchedule"),
        ("airflow.timetables.assets", "AssetOrTimeSchedule"),
    ),
    "CronTriggerTimetable": (
        ("airflow.sdk", "CronTriggerTimetable"),
        ("airflow.timetables.trigger", "CronTriggerTimetable"),
    ),
    "DagBag": (("airflow.dag_processing.dagbag", "DagBag"), ("airflow.models.dagbag", "DagBag")),
    "SkipMixin": (("airflow.sdk.bases.skipmixin", "SkipMixin"), ("airflow.models.skipmixin", "SkipMixin")),
    "TaskDeferred": (("airflow.sdk.exceptions", "TaskDeferred"), ("airflow.exceptions", "TaskDeferred")),
    "DagSerialization": (
        ("airflow.serialization.serialized_objects", "DagSerialization"),
        ("airflow.serialization.serialized_objects", "SerializedDAG"),
    ),
    "serialize": (("airflow.sdk.serde", "serialize"), ("airflow.serialization.serde", "serialize")),
    "deserialize": (("airflow.sdk.serde", "deserialize"), ("airflow.serialization.serde", "deserialize")),
}


def __getattr__(name: str) -> Any:
    """Resolve a lazily imported name of :data:`_LAZY` (the first location that has it wins)."""
    import importlib

    if name == "BaseHook":
        value = globals()[name] = _base_hook()
        return value
    locations = _LAZY.get(name)
    if locations is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module_name, attr in locations:
        try:
            value = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            continue
        globals()[name] = value
        return value
    raise ImportError(f"{name} is in none of {[m for m, _ in locations]} on Airflow {AIRFLOW_VERSION}")


@cache
def has_hitl() -> bool:
    """Whether Airflow's human-in-the-loop operators can run (Airflow 3.1+ and its standard provider)."""
    if not AIRFLOW_V_3_1_PLUS:  # the standard provider's hitl module refuses to import on 3.0
        return False
    try:
        import airflow.providers.standard.operators.hitl  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def hitl_operator() -> type[Any]:
    """Airflow's ``HITLOperator``; where :func:`has_hitl` is false, a stand-in taking the same arguments.

    The stand-in keeps a DAG's shape the same on every line (same tasks, same attributes); its ``execute`` fails
    without retries, so a subclass should skip or fail with its own message before calling it.
    """
    if has_hitl():
        from airflow.providers.standard.operators.hitl import HITLOperator

        return HITLOperator
    from airflow.sdk import BaseOperator

    class HITLUnavailableOperator(BaseOperator):
        """``HITLOperator``'s arguments on an Airflow without human-in-the-loop (it cannot ask anyone)."""

        def __init__(self, *, subject: str, options: list[str], body: str | None = None,
                     defaults: str | list[str] | None = None, multiple: bool = False,
                     params: dict[str, Any] | None = None, notifiers: Any = None, assigned_users: Any = None,
                     response_timeout: Any = None, **kwargs: Any) -> None:
            super().__init__(params=params, **kwargs)
            self.subject, self.body, self.options, self.multiple = subject, body, options, multiple
            self.defaults = [defaults] if isinstance(defaults, str) else defaults
            self.notifiers, self.assigned_users, self.response_timeout = notifiers, assigned_users, response_timeout

        def execute(self, context: Any) -> Any:
            """Fail (a retry cannot help): this Airflow has no human-in-the-loop."""
            raise AirflowFailException(f"{self.task_id} needs human-in-the-loop (Airflow 3.1+), "
                                       f"not available on Airflow {AIRFLOW_VERSION}")

    return HITLUnavailableOperator


def hitl_timeout(timeout: Any) -> dict[str, Any]:
    """The keyword argument of :func:`hitl_operator` that bounds the wait for a response.

    ``response_timeout`` where the standard provider has it (with Airflow 3.2+); older HITL operators (Airflow
    3.1) take the wait from ``execution_timeout``.

    :param timeout: the longest wait (a ``timedelta``).
    """
    import inspect

    if "response_timeout" in inspect.signature(hitl_operator().__init__).parameters:
        return {"response_timeout": timeout}
    return {"execution_timeout": timeout}


def get_listener_manager() -> Any:
    """Return Airflow's listener manager (``airflow.sdk.listener`` from 3.2, ``airflow.listeners`` before)."""
    try:
        from airflow.sdk.listener import get_listener_manager as _get
    except ImportError:
        from airflow.listeners.listener import get_listener_manager as _get  # type: ignore[assignment]
    return _get()


_T = TypeVar("_T")
_warned: set[str] = set()


def warn_once(key: str, message: str, *args: Any) -> None:
    """Log one WARNING per process for a feature the running Airflow lacks (the fallback is in the message).

    :param key: what the warning is about (deduplication key).
    :param message: the %-style log message.
    """
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def latest_asset_events(accessor: Any, limit: int = 1) -> list[Any]:
    """The newest ``limit`` inlet asset events, newest first, on every Airflow line.

    ``context["inlet_events"][asset]`` can be ordered and limited in the database from Airflow 3.2
    (``.ascending(False).limit(n)``); older lines hand over a sequence in ascending order, which is
    sliced here instead (every event of the asset is then loaded).

    :param accessor: ``context["inlet_events"][asset]``.
    :param limit: how many events to return (>= 1).
    """
    if hasattr(accessor, "ascending"):
        return list(accessor.ascending(False).limit(limit))
    warn_once(
        "inlet_events",
        "Airflow %s has no inlet_events[...].ascending(): the newest asset event is picked from the full list",
        AIRFLOW_VERSION,
    )
    events: list[Any] = list(accessor) if isinstance(accessor, Iterable) else []
    return events[::-1][:limit]


def reschedule_date(value: _T | str) -> _T | Any:
    """Normalise ``get_first_reschedule_date()`` (a datetime; an ISO string on Airflow 3.0).

    :param value: what the task instance returned (``None``, a datetime or a string).
    """
    if isinstance(value, str):
        from datetime import datetime

        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


@contextmanager
def parsed_reschedule_dates(ti: Any) -> Iterator[None]:
    """Make ``ti.get_first_reschedule_date()`` return a datetime while a reschedule-mode sensor runs.

    Airflow 3.0 hands the sensor base an ISO string, and its timeout arithmetic then fails with ``TypeError``
    on the first reschedule; 3.1 and later return a datetime (nothing is changed there).

    :param ti: the running task instance (``context["ti"]``).
    """
    cls = type(ti)
    original = getattr(cls, "get_first_reschedule_date", None)
    if AIRFLOW_V_3_1_PLUS or original is None:
        yield
        return

    def parsed(self: Any, *args: Any, **kwargs: Any) -> Any:
        return reschedule_date(original(self, *args, **kwargs))

    cls.get_first_reschedule_date = parsed
    try:
        yield
    finally:
        cls.get_first_reschedule_date = original


def prepare_dag_test(dag: Any) -> None:
    """Write ``dag`` and its assets to the metadata DB before ``dag.test()`` on Airflow 3.0.

    From 3.1, ``dag.test()`` syncs the DAG itself; 3.0's does not, so a task with asset inlets or outlets fails
    with ``AirflowInactiveAssetInInletOrOutletException`` (a real scheduler has the DAG processor do this).
    On 3.0 it also filters ``dag.test()``'s structlog output to INFO: 3.0 prints DEBUG messages there, secrets
    sent to the masker included; and it renders tracebacks as plain text (3.0 prints each frame's locals).

    :param dag: the DAG about to be run with ``dag.test()``.
    """
    if AIRFLOW_V_3_1_PLUS:
        return
    import structlog

    # 3.0's in-process task runner logs every supervisor request at DEBUG through an unfiltered structlog,
    # including MaskSecret(value=<the secret>): keep dag.test() output at INFO and above.
    # Its console renderer also prints tracebacks through rich with every frame's local variables (secrets
    # included) and ANSI colours: render them as plain text, as Airflow 3.1+ does outside DEV mode.
    processors = [p for p in structlog.get_config()["processors"] if not isinstance(p, structlog.dev.ConsoleRenderer)]
    processors.append(structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO), processors=processors)
    warn_once("dag_test_log", "Airflow %s: dag.test() tracebacks rendered as plain text (no locals, no colours)",
              AIRFLOW_VERSION)
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dag import DAG as SchedulerDAG
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.serialization.serialized_objects import SerializedDAG as _Serialized  # type: ignore[attr-defined]
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    lazy = LazyDeserializedDAG(data=_Serialized.to_dict(dag))  # type: ignore[attr-defined]
    with create_session() as session:
        SchedulerDAG.bulk_write_to_db("dags-folder", None, [lazy], session=session)


def alias_event_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """The ``extra`` of an asset-alias event, made hashable on Airflow 3.0.

    3.0 de-duplicates alias events with ``frozenset(extra.items())``, so a list or dict value fails the task with
    ``TypeError: unhashable type``; there such values are passed as JSON strings (one warning per process).
    3.1 and later take any JSON value (nothing is changed there).

    :param extra: the JSON-safe extra.
    """
    if AIRFLOW_V_3_1_PLUS:
        return extra
    import json

    unhashable = sorted(k for k, v in extra.items() if isinstance(v, (list, dict)))
    if not unhashable:
        return extra
    warn_once("alias_extra", "Airflow %s needs hashable asset-alias event extras: %s passed as JSON strings",
              AIRFLOW_VERSION, ", ".join(unhashable))
    return {k: json.dumps(v, sort_keys=True) if k in unhashable else v for k, v in extra.items()}


def multiple_outputs(values: dict[str, Any]) -> dict[str, Any]:
    """A ``multiple_outputs`` return value that every line can store.

    Airflow 3.0 pushes each key as its own XCom and its API rejects a ``None`` value (HTTP 422, the task fails);
    there ``None`` values become ``""`` (one warning per process). Pass them only to arguments that read a blank
    string as "not given" (the provider's optional text arguments do). 3.1 and later store ``None``.

    :param values: the task's return value.
    """
    if AIRFLOW_V_3_1_PLUS or all(v is not None for v in values.values()):
        return values
    warn_once("multiple_outputs_none", "Airflow %s cannot store None in a multiple_outputs XCom: %s passed as ''",
              AIRFLOW_VERSION, ", ".join(sorted(k for k, v in values.items() if v is None)))
    return {k: "" if v is None else v for k, v in values.items()}


def trigger_on_kill_supported() -> bool:
    """Whether the triggerer calls a trigger's ``on_kill`` when its deferred task is killed (Airflow >= 3.3)."""
    return AIRFLOW_V_3_3_PLUS


__all__ = [
    "EnumBody",
    "str_enum",
    "alias_event_extra",
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "MIN_AIRFLOW_VERSION",
    "AirflowSensorTimeout",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "AssetOrTimeSchedule",
    "BaseHook",
    "CronTriggerTimetable",
    "DagBag",
    "DagSerialization",
    "ParamValidationError",
    "TaskDeferred",
    "conf",
    "deserialize",
    "get_listener_manager",
    "has_fs",
    "has_hitl",
    "hitl_operator",
    "hitl_timeout",
    "latest_asset_events",
    "multiple_outputs",
    "object_storage_path",
    "parsed_reschedule_dates",
    "prepare_dag_test",
    "reschedule_date",
    "serde_round_trip",
    "serialize",
    "SkipMixin",
    "trigger_on_kill_supported",
    "warn_once",
]
