"""The trigger event envelope: one status enum with terminal sets, one validator, one ``hook_params`` rule.

Every Bria trigger fires exactly one event, a JSON-safe dict with a ``status`` and a ``message`` plus the fields
of its kind (:class:`EventContract`). The status strings are those release 0.1.0 wrote (``done`` for a bulk
upload, ``success`` elsewhere), so an event fired by an old triggerer still resumes a task under this code:
the wire format did not change, only where it is checked. This module does not import Airflow's trigger
machinery, so operators and the sensor stay cheap to import when a DAG is parsed.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_bria.exceptions import BriaInputError, BriaTriggerEventError


class EventStatus(str, enum.Enum):
    """Every status a Bria trigger event carries (one enum, terminal sets below, as dbt Cloud's provider does)."""

    SUCCESS = "success"
    DONE = "done"  # the bulk-upload trigger's "the job ended" (its outcome is read on the worker)
    FAILED = "failed"
    STOPPED = "stopped"
    DELETED = "deleted"
    TIMEOUT = "timeout"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


#: The wait ended because the awaited work ended (its own outcome may still be read on the worker).
SUCCESS_STATUSES = frozenset({EventStatus.SUCCESS, EventStatus.DONE})
#: The awaited work ended badly for good.
FAILURE_STATUSES = frozenset({EventStatus.FAILED, EventStatus.STOPPED, EventStatus.DELETED})
#: The wait itself ended without an answer (a deadline, or polling that kept failing).
WAIT_ENDED_STATUSES = frozenset({EventStatus.TIMEOUT, EventStatus.ERROR})


@dataclass(frozen=True)
class EventField:
    """A field an event of some kind must carry.

    :param name: the key.
    :param convert: returns the field's value as the caller uses it; raises ``TypeError``/``ValueError``/
        ``KeyError`` (or :class:`BriaInputError`) when it is missing or malformed.
    :param description: how the message names it ("a dataset_id").
    """

    name: str
    convert: Callable[[Any], Any]
    description: str


@dataclass(frozen=True)
class EventContract:
    """What one trigger's events look like.

    :param label: the kind, for messages ("bulk upload", "training", "generation").
    :param statuses: the statuses this kind fires.
    :param fields: the fields every event of this kind carries (checked and converted in this order).
    """

    label: str
    statuses: frozenset[EventStatus]
    fields: tuple[EventField, ...] = ()

    @property
    def status_values(self) -> frozenset[str]:
        """The statuses as the strings on the wire."""
        return frozenset(status.value for status in self.statuses)


def validate_event(event: Any, contract: EventContract) -> dict[str, Any]:
    """The one validator of a trigger event, used by every operator's ``execute_complete`` and by the sensor.

    :param event: the payload a deferred task resumed with.
    :param contract: the kind of event expected.
    :return: a copy of the event, its fields converted by their :class:`EventField`.
    :raises BriaTriggerEventError: when the event is missing, not a dict, has an unknown status or lacks a field.
    """
    name = contract.label
    if event is None:
        raise BriaTriggerEventError(f"Unexpected {name} trigger event: the task resumed without one (None)")
    if not isinstance(event, Mapping):
        raise BriaTriggerEventError(f"Unexpected {name} trigger event: must be a dict, got {type(event).__name__}")
    status = event.get("status")
    if status not in contract.status_values:
        raise BriaTriggerEventError(f"Unexpected {name} trigger event status {status!r}; expected one of "
                                    f"{sorted(contract.status_values)}: {event!r}")
    out = dict(event)
    for field in contract.fields:
        try:
            out[field.name] = field.convert(event[field.name])
        except (KeyError, TypeError, ValueError, BriaInputError):
            raise BriaTriggerEventError(f"{name[:1].upper()}{name[1:]} trigger event without {field.description}: "
                                        f"{event!r}") from None
    return out


def strict_int(value: Any) -> int:
    """An int that is not a bool (event ids), else ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an int: {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# hook_params of a deferred task
# --------------------------------------------------------------------------------------------


def _carried(value: Any) -> bool:
    from airflow_provider_bria._compat import serde_round_trip

    try:
        json.dumps(value)
        return bool(serde_round_trip(value) == value)
    except (TypeError, ValueError):
        return False


def check_hook_params(value: Any, *, drop_invalid: bool = False, log: logging.Logger | Any = None) -> dict[str, Any]:
    """The one rule for ``hook_params`` a trigger carries: JSON values that survive Airflow's serialisation.

    A deferred task's hook is rebuilt in the triggerer from the trigger's kwargs, so every value must come back
    equal from Airflow's serde round trip (JSON scalars, lists and dicts of them; not a ``timedelta``).

    :param value: ``None`` or a mapping.
    :param drop_invalid: drop (and log) values that cannot be carried instead of raising; only the bulk-upload
        trigger, whose release 0.1.0 dropped them silently and whose stored kwargs must still load.
    :param log: where a dropped value is logged.
    :raises BriaInputError: naming ``hook_params`` and the keys that cannot be carried.
    """
    if value is not None and not isinstance(value, Mapping):
        raise BriaInputError(f"hook_params must be a dict, got {type(value).__name__}")
    params = dict(value or {})
    bad = {key: type(item).__name__ for key, item in params.items() if not _carried(item)}
    if not bad:
        return params
    if drop_invalid:
        (log or logging.getLogger(__name__)).warning("hook_params %s cannot travel to the triggerer; dropped",
                                                     sorted(bad))
        return {key: item for key, item in params.items() if key not in bad}
    raise BriaInputError(f"hook_params of a deferred task must hold only JSON values (JSON scalars, lists, dicts) "
                         f"that survive Airflow's serialisation; not serialisable: {bad}")


# --------------------------------------------------------------------------------------------
# The three kinds of event (their wire format is release 0.1.0's)
# --------------------------------------------------------------------------------------------


def _job_resume_state(value: Any) -> dict[str, Any]:
    from airflow_provider_bria._state import JOB_RESUME_STATE, load

    state = load(JOB_RESUME_STATE, value) if isinstance(value, Mapping) else value
    if not isinstance(state, dict) or not isinstance(state.get("pending"), list):
        raise TypeError("no resume state")
    return state


#: :class:`~airflow_provider_bria.triggers.training.BriaTrainingTrigger`: ``status``, ``model_id``,
#: ``model_status``, ``message``, ``reason``, ``model``.
TRAINING_EVENTS = EventContract(
    "training",
    frozenset({EventStatus.SUCCESS, EventStatus.FAILED, EventStatus.STOPPED, EventStatus.DELETED,
               EventStatus.TIMEOUT, EventStatus.ERROR}),
    (EventField("model_id", strict_int, "an integer model_id"),),
)
#: :class:`~airflow_provider_bria.triggers.upload.BriaBulkUploadTrigger`: ``status``, ``dataset_id``,
#: ``job_status``, ``message``, ``state``.
BULK_UPLOAD_EVENTS = EventContract(
    "bulk upload",
    frozenset({EventStatus.DONE, EventStatus.TIMEOUT, EventStatus.ERROR}),
    (EventField("dataset_id", int, "a dataset_id"),),
)
#: :class:`~airflow_provider_bria.triggers.job.BriaJobTrigger`: ``status``, ``message``, ``outcomes``,
#: ``pending``, ``context`` (the operator's resume state, converted to the current layout).
JOB_EVENTS = EventContract(
    "generation",
    frozenset({EventStatus.SUCCESS, EventStatus.TIMEOUT, EventStatus.ERROR}),
    (EventField("context", _job_resume_state, "the task's resume state"),),
)
