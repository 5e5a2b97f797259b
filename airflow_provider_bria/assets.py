"""Airflow assets for Bria models, so generation DAGs can be scheduled on a newly trained model.

A trained model is the asset ``bria://models/<project name>/<model name>`` (each segment percent-quoted, so
names with spaces or slashes are safe). The training operator emits an event on that asset when training
completes, with the model id and its settings in the event's ``extra`` (see :func:`model_asset_extra`).
A consumer DAG schedules on :func:`bria_model_asset` and reads the id back with
:func:`model_id_from_asset_events`::

    from airflow_provider_bria.assets import bria_model_asset

    with DAG("brand_x_generate", schedule=[bria_model_asset("Brand X", "brand-x-v2")]):
        BriaGenerateImagesOperator(
            task_id="generate",
            tailored_model_id="{{ (triggering_asset_events.values() | first | last).extra['model_id'] }}",
            ...
        )

(or, in a ``@task``, ``model_id_from_asset_events(context["triggering_asset_events"])``).

A prepared dataset is likewise ``bria://datasets/<project name>/<dataset name>``
(:func:`bria_dataset_asset`), for preparation DAGs that schedule a training DAG.

The asset's name equals its URI, so ``Asset("bria://models/Brand%20X/brand-x-v2")`` written by hand is the
same asset.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from airflow.sdk import Asset

from airflow_provider_bria.exceptions import BriaInputError

ASSET_SCHEME = "bria"
MODEL_ASSET_PREFIX = f"{ASSET_SCHEME}://models/"
DATASET_ASSET_PREFIX = f"{ASSET_SCHEME}://datasets/"


def _model_extra_fields() -> tuple[str, ...]:
    """Model fields copied into an asset event's extra when present (all small and JSON-safe): the training
    summary's fields (the id travels as ``model_id``) plus ``updated_at``. A function so that defining a DAG
    with a model asset does not import the trigger's event module."""
    from airflow_provider_bria.triggers._training_events import MODEL_SUMMARY_FIELDS

    return (*(f for f in MODEL_SUMMARY_FIELDS if f != "id"), "updated_at")


def _segment(value: Any, field: str) -> str:
    text = str(value).strip() if value is not None else ""
    if not text:
        raise BriaInputError(f"{field} is required to name a Bria asset")
    return quote(text, safe="")


def model_asset_uri(project_name: str, model_name: str) -> str:
    """Return ``bria://models/<project>/<model>`` with both names percent-quoted.

    :param project_name: the Bria project's name.
    :param model_name: the model's name (unique within its dataset).
    :raises BriaInputError: when a name is empty.
    """
    return f"{MODEL_ASSET_PREFIX}{_segment(project_name, 'project_name')}/{_segment(model_name, 'model_name')}"


def bria_model_asset(project_name: str, model_name: str) -> Asset:
    """Return the Airflow :class:`~airflow.sdk.Asset` standing for a trained Bria model.

    :param project_name: the Bria project's name.
    :param model_name: the model's name.
    :raises BriaInputError: when a name is empty.
    """
    uri = model_asset_uri(project_name, model_name)
    return Asset(uri=uri, name=uri)


def dataset_asset_uri(project_name: str, dataset_name: str) -> str:
    """Return ``bria://datasets/<project>/<dataset>`` with both names percent-quoted.

    :param project_name: the Bria project's name.
    :param dataset_name: the dataset's name (unique within its project).
    :raises BriaInputError: when a name is empty.
    """
    return (
        f"{DATASET_ASSET_PREFIX}{_segment(project_name, 'project_name')}/{_segment(dataset_name, 'dataset_name')}"
    )


def bria_dataset_asset(project_name: str, dataset_name: str) -> Asset:
    """Return the Airflow :class:`~airflow.sdk.Asset` standing for a prepared (completed) Bria dataset.

    A preparation DAG lists it in a task's ``outlets`` and puts the ids in the event's ``extra``; a training
    DAG schedules on the same call. The name equals the URI, like :func:`bria_model_asset`.

    :param project_name: the Bria project's name.
    :param dataset_name: the dataset's name.
    :raises BriaInputError: when a name is empty.
    """
    uri = dataset_asset_uri(project_name, dataset_name)
    return Asset(uri=uri, name=uri)


def parse_model_asset_uri(uri: str) -> tuple[str, str]:
    """Split a ``bria://models/<project>/<model>`` URI back into ``(project_name, model_name)``.

    :param uri: the asset URI.
    :raises BriaInputError: when it is not a Bria model asset URI.
    """
    parts = urlsplit(str(uri))
    segments = parts.path.lstrip("/").split("/")
    if parts.scheme.lower() != ASSET_SCHEME or parts.netloc != "models" or len(segments) != 2 or not all(segments):
        raise BriaInputError(f"Not a Bria model asset URI: {uri!r} (expected bria://models/<project>/<model>)")
    return unquote(segments[0]), unquote(segments[1])


def model_asset_extra(
    model: Mapping[str, Any],
    *,
    project_name: str | None = None,
    model_url: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build the ``extra`` of a model asset event: the model id plus a few small, JSON-safe facts.

    :param model: the model object from the API (``get_model``); must hold ``id``.
    :param project_name: the project's name, if known.
    :param model_url: the model's console URL, if known.
    :param extra: further JSON-safe values to include (they win over model fields).
    :return: e.g. ``{"model_id": 12, "name": "v2", "status": "Completed", "project_id": 3, ...}``.
    :raises BriaInputError: when the model has no integer id.
    """
    try:
        model_id = int(model["id"])
    except (KeyError, TypeError, ValueError):
        raise BriaInputError("model_asset_extra needs a model object with an integer 'id'") from None
    out: dict[str, Any] = {"model_id": model_id}
    for field in _model_extra_fields():
        value = model.get(field)
        if value is not None:
            out[field] = value
    if project_name is not None:
        out["project_name"] = project_name
    if model_url is not None:
        out["model_url"] = model_url
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def _event_model_id(event: Any) -> int | None:
    extra = event.get("extra") if isinstance(event, Mapping) else getattr(event, "extra", None)
    if not isinstance(extra, Mapping) or extra.get("model_id") is None:
        return None
    try:
        return int(extra["model_id"])
    except (TypeError, ValueError):
        return None


def _event_uri(event: Any) -> str:
    asset = event.get("asset") if isinstance(event, Mapping) else getattr(event, "asset", None)
    if isinstance(asset, Mapping):
        return str(asset.get("uri") or "")
    return str(getattr(asset, "uri", "") or "")


def _event_timestamp(event: Any) -> datetime | None:
    ts = event.get("timestamp") if isinstance(event, Mapping) else getattr(event, "timestamp", None)
    return ts if isinstance(ts, datetime) else None


def model_id_from_asset_events(triggering_asset_events: Any, asset: Asset | None = None) -> int | None:
    """Return the model id carried by the newest Bria model asset event that triggered a run.

    :param triggering_asset_events: ``context["triggering_asset_events"]`` (a mapping of asset to events),
        or any iterable of events.
    :param asset: only consider events of this asset; default: any ``bria://models/...`` asset.
    :return: the model id, or ``None`` when no such event carries one.
    """
    if triggering_asset_events is None:
        return None
    events: list[Any] = []
    if isinstance(triggering_asset_events, Mapping) or hasattr(triggering_asset_events, "items"):
        if asset is not None:
            try:
                events = list(triggering_asset_events[asset])
            except (KeyError, TypeError):
                events = []
        else:
            for key, evs in triggering_asset_events.items():
                if str(getattr(key, "uri", "")).startswith(MODEL_ASSET_PREFIX):
                    events.extend(evs)
    else:
        events = [e for e in triggering_asset_events
                  if asset is None and _event_uri(e).startswith(MODEL_ASSET_PREFIX)
                  or asset is not None and _event_uri(e) == asset.uri]

    stamps = [_event_timestamp(e) for e in events]
    if all(ts is not None for ts in stamps):
        order = sorted(range(len(events)), key=lambda i: (stamps[i], i))
        events = [events[i] for i in order]
    for event in reversed(events):  # newest first
        model_id = _event_model_id(event)
        if model_id is not None:
            return model_id
    return None
