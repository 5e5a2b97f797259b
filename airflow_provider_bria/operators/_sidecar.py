"""The output-folder metadata ("sidecar") format: one ``<stem>.json`` next to each generated output.

A sidecar is what a retry, a re-run and the UI gallery read back: the request id of a job already paid for, the
URLs Bria answered with, the seed and prompt of a saved output. This module owns its layout and its status
vocabulary (:class:`SidecarStatus`); the operators and the gallery only go through it.

On disk: a JSON object, keys sorted, with ``state_version`` (:data:`airflow_provider_bria._state.SIDECAR`).
Sidecars without ``state_version`` were written by release 0.1.0 and are read as version 0 of the same layout
(golden copies under ``tests/compat/golden/sidecars``).

Fields by status (all optional but ``status``):

- ``submitted``: ``request_id``, ``status_url`` (never contacted: only its request id is polled), ``model_id``,
  ``prompt``, ``input_structured_prompt``, ``seed``, ``index``, ``submitted_at``;
- ``generated`` (legacy v1): ``urls``, ``seeds``, ``url_tags`` (keyed tags, see ``BriaHook.url_tag``),
  ``model_id``, ``prompt``, ``seed``, ``generated_at``;
- ``completed``: the output's record (``uri``, ``seed``, ``request_id``, ``structured_prompt``...), and for
  legacy v1 the URL fields above and ``outputs`` (one record per image);
- ``url_unusable``: the saved URLs or request stopped working; a retry requests again.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_bria._state import SIDECAR, load, stamp

if TYPE_CHECKING:
    from airflow_provider_bria.operators._outputs import OutputFolder

#: Sidecar file suffix.
SUFFIX = ".json"
#: Field of a legacy v1 sidecar listing one record per image (one sidecar, several images).
OUTPUTS_FIELD = "outputs"


class SidecarStatus(str, enum.Enum):
    """The ``status`` of a sidecar (see the module docstring for the fields each one carries)."""

    #: A v2 job was submitted and its request id saved; the output is not written yet.
    SUBMITTED = "submitted"
    #: A legacy v1 request answered with image URLs; not every image is downloaded yet.
    GENERATED = "generated"
    #: The job ended with a result (the output's file is its commit marker: no file = not done).
    COMPLETED = "completed"
    #: The saved URLs or request no longer work (4xx): a retry requests the output again.
    URL_UNUSABLE = "url_unusable"


#: Statuses whose saved URLs a retry may download instead of paying again (legacy v1).
URLS_REUSABLE = frozenset({SidecarStatus.GENERATED, SidecarStatus.COMPLETED})


def name_of(stem: str) -> str:
    """The sidecar file name of an output stem.

    :param stem: the output's stem.
    """
    return stem + SUFFIX


def encode(payload: Mapping[str, Any]) -> bytes:
    """Serialise a sidecar (versioned, keys sorted).

    :param payload: JSON-safe fields; enum values are written as their value.
    """
    return json.dumps(stamp(SIDECAR, payload), indent=1, sort_keys=True).encode("utf-8")


def decode(data: bytes) -> dict[str, Any] | None:
    """Parse a sidecar written by this or an older release, or ``None`` when it is not a JSON object.

    :param data: the file content.
    :raises airflow_provider_bria._state.StateVersionError: when a newer provider wrote it.
    """
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return load(SIDECAR, value) if isinstance(value, dict) else None


def status_of(side: Mapping[str, Any] | None) -> SidecarStatus | None:
    """The status of a read sidecar, or ``None`` (missing, unknown value).

    :param side: the decoded sidecar.
    """
    try:
        return SidecarStatus(str((side or {}).get("status")))
    except ValueError:
        return None


def read(folder: OutputFolder, stem: str) -> dict[str, Any]:
    """The sidecar of ``stem`` (``{}`` when missing or unreadable).

    :param folder: the output folder.
    :param stem: the output's stem.
    """
    return folder.read_json(name_of(stem)) or {}


def read_if(folder: OutputFolder, stem: str, *statuses: SidecarStatus) -> dict[str, Any]:
    """The sidecar of ``stem`` when its status is one of ``statuses``, else ``{}``.

    :param folder: the output folder.
    :param stem: the output's stem.
    :param statuses: the accepted statuses.
    """
    side = read(folder, stem)
    return side if status_of(side) in statuses else {}


def write(folder: OutputFolder, stem: str, status: SidecarStatus, **fields: Any) -> None:
    """Write the sidecar of ``stem``.

    :param folder: the output folder.
    :param stem: the output's stem.
    :param status: its status.
    :param fields: the fields that go with it.
    """
    folder.write_json(name_of(stem), {**fields, "status": status.value})


def saved_list(side: Mapping[str, Any], key: str) -> list[Any]:
    """A list field of a sidecar (``[]`` when missing or not a list: a sidecar is user-editable data).

    :param side: the decoded sidecar.
    :param key: the field.
    """
    value = side.get(key)
    return value if isinstance(value, list) else []
