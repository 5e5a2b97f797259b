"""Versions of the state the provider leaves in flight between two runs of its code.

A provider upgrade can happen while a task is deferred (trainings last hours) or between two tries of a task:
the new code then reads what the old code wrote. Every such record carries ``state_version`` and goes through
:func:`load` before use:

- trigger kwargs (``serialize()`` of the training, bulk-upload and job triggers; Airflow stores them and
  re-creates the trigger with them, possibly in a triggerer running the new code);
- resume-state blobs carried through a trigger and handed back in its event (the generation operators' job
  runner state, the bulk upload's counts);
- sidecar files next to generated outputs (what a retry reads to resume a submitted job instead of paying
  again).

Records without ``state_version`` were written by 0.1.0 (the first release) and are version 0 of the same
layout. A record newer than this code understands fails with :class:`StateVersionError` (downgrading a
provider under deferred tasks is not supported) instead of being misread. Changing a layout means: bump its
version in :data:`STATE_VERSIONS`, add the step to :data:`MIGRATIONS`, and add a golden copy of the old
layout under ``tests/compat/golden/`` (the suite resumes every golden copy with the current code).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_bria.exceptions import BriaInputError

#: The key carrying the version in every persisted record.
STATE_VERSION_KEY = "state_version"

TRAINING_TRIGGER = "training_trigger"
UPLOAD_TRIGGER = "upload_trigger"
JOB_TRIGGER = "job_trigger"
JOB_RESUME_STATE = "job_resume_state"
UPLOAD_RESUME_STATE = "upload_resume_state"
SIDECAR = "sidecar"

#: Current layout version of each kind of record (0 = the unversioned layout of release 0.1.0).
STATE_VERSIONS: dict[str, int] = {
    TRAINING_TRIGGER: 1,
    UPLOAD_TRIGGER: 1,
    JOB_TRIGGER: 1,
    JOB_RESUME_STATE: 1,
    UPLOAD_RESUME_STATE: 1,
    SIDECAR: 1,
}


def _unchanged(record: dict[str, Any]) -> dict[str, Any]:
    return record


#: ``MIGRATIONS[kind][v]`` turns a version-``v`` record into version ``v + 1``. 0 -> 1 only added the
#: version key: the layout is unchanged.
MIGRATIONS: dict[str, dict[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    kind: {0: _unchanged} for kind in STATE_VERSIONS
}


class StateVersionError(BriaInputError):
    """A persisted record was written by a newer provider (or is corrupt): it is not guessed at."""


def stamp(kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``record`` with the current version of ``kind`` added.

    :param kind: one of the keys of :data:`STATE_VERSIONS`.
    :param record: the JSON-safe record to persist.
    """
    return {**record, STATE_VERSION_KEY: STATE_VERSIONS[kind]}


def check_version(kind: str, version: Any) -> int:
    """Validate a stored version of ``kind`` (``None``: release 0.1.0, version 0) and return it.

    :param kind: one of the keys of :data:`STATE_VERSIONS`.
    :param version: the stored ``state_version``.
    :raises StateVersionError: for a version newer than this code knows, or not an int.
    """
    if version is None:
        return 0
    current = STATE_VERSIONS[kind]
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise StateVersionError(f"{kind}: state_version must be an int >= 0, got {version!r}")
    if version > current:
        raise StateVersionError(
            f"{kind} state version {version} was written by a newer airflow-provider-bria (this one reads up to "
            f"{current}); run the newer provider on every worker and triggerer, downgrades are not supported"
        )
    return version


def load(kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``record`` migrated to the current layout of ``kind``, without the version key.

    :param kind: one of the keys of :data:`STATE_VERSIONS`.
    :param record: a record :func:`stamp` (or release 0.1.0) wrote.
    :raises StateVersionError: when the record is newer than this code.
    """
    data = dict(record)
    version = check_version(kind, data.pop(STATE_VERSION_KEY, None))
    for step in range(version, STATE_VERSIONS[kind]):
        data = MIGRATIONS[kind][step](data)
    return data
