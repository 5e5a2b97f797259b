"""Operators for Bria datasets: create (find-or-create), update (schema, prefix, name, completion), clone, delete."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_bria.contract import (
    FIBO_MIN_IMAGES_TO_COMPLETE,
    LEGACY_MIN_IMAGES_TO_COMPLETE,
    DatasetStatus,
    TrainingFamily,
    UploadType,
    canonical_training_version,
    check_family_compatible,
    parse_enum,
    training_family,
)
from airflow_provider_bria.exceptions import BriaConflictError, BriaInputError
from airflow_provider_bria.links.bria import BriaDatasetLink, BriaProjectLink, push_console_xcoms
from airflow_provider_bria.operators._lifecycle import (
    BriaCreateOperatorBase,
    BriaDeleteOperatorBase,
    CreateSpec,
    enum_arg,
    refuse_if_different,
)
from airflow_provider_bria.operators._reconcile import (
    IF_EXISTS_REUSE,
    coerce_id,
    conflict_from,
    is_templated,
)
from airflow_provider_bria.operators.base import BriaBaseOperator

# --------------------------------------------------------------------------------------------
# Helpers shared with operators.captions and operators.model
# --------------------------------------------------------------------------------------------


def json_text(value: Any, field: str) -> str:
    """Return a JSON document as the string Bria expects: dicts/lists are dumped, strings must hold JSON.

    :param value: a ``dict``/``list`` or a ``str`` holding JSON.
    :param field: the argument name, for messages.
    :raises BriaInputError: for empty or invalid JSON.
    """
    if isinstance(value, (Mapping, list)):
        return json.dumps(value, ensure_ascii=False)
    text = str(value).strip() if value is not None else ""
    if not text:
        raise BriaInputError(f"{field} must not be empty")
    try:
        json.loads(text)
    except ValueError as err:
        raise BriaInputError(f"{field} must be valid JSON (a dict or a string holding JSON): {err}") from None
    return text


def same_json(a: Any, b: Any) -> bool:
    """Whether two JSON strings (or values) hold the same document.

    :param a: first value.
    :param b: second value.
    """
    if a is None or b is None:
        return a is b

    def _load(v: Any) -> Any:
        if isinstance(v, str):
            try:
                return json.loads(v)
            except ValueError:
                return v
        return v

    return bool(_load(a) == _load(b))


def dataset_family(dataset: Mapping[str, Any]) -> TrainingFamily:
    """Return a dataset's training family; datasets without ``training_version`` (FIBO-only API) are FIBO.

    :param dataset: the dataset object.
    """
    version = dataset.get("training_version")
    try:
        return training_family(version) or TrainingFamily.FIBO
    except BriaInputError:
        return TrainingFamily.FIBO


def images_count(dataset: Mapping[str, Any]) -> int:
    """Number of images of a dataset object (``images_count``, else the length of ``images``).

    :param dataset: the dataset object.
    """
    if dataset.get("images_count") is not None:
        return int(dataset["images_count"])
    return len(dataset.get("images") or [])


def is_completed(dataset: Mapping[str, Any]) -> bool:
    """Whether a dataset is ``completed`` (frozen).

    :param dataset: the dataset object.
    """
    return str(dataset.get("status") or "").lower() == DatasetStatus.COMPLETED.value


def require_draft(dataset: Mapping[str, Any], action: str) -> None:
    """Raise :class:`BriaConflictError` (before any call) when a dataset is completed and so frozen.

    :param dataset: the dataset object.
    :param action: what was attempted, for the message.
    """
    if is_completed(dataset):
        raise BriaConflictError(
            f"Dataset {dataset.get('id')} is completed (frozen): cannot {action}. "
            "Clone it as a draft with BriaCloneDatasetOperator and change the clone"
        )


def dataset_project_id(dataset: Mapping[str, Any]) -> int | None:
    """The dataset's project id, or ``None``.

    :param dataset: the dataset object.
    """
    value = dataset.get("project_id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _validate_name(value: Any, field: str) -> str:
    text = str(value) if value is not None else ""
    if not text.strip():
        raise BriaInputError(f"{field} is required and must not be empty")
    return text


# --------------------------------------------------------------------------------------------
# Create
# --------------------------------------------------------------------------------------------


class BriaCreateDatasetOperator(BriaCreateOperatorBase):
    """Create a dataset in a project, or reuse the project's dataset with the same name.

    The dataset name within the project is the natural key (look up before creating, and again after an
    ambiguous failure, so retries never duplicate it). The project is read first: an unknown project fails
    with :class:`~airflow_provider_bria.exceptions.BriaNotFoundError` and a ``training_version`` of the
    other family (FIBO vs legacy) with :class:`~airflow_provider_bria.exceptions.BriaInputError`, before any
    change. ``training_version`` is not in Bria's current (FIBO-only) spec, so it is sent only when given;
    without it the API picks the family (FIBO; a FIBO-locked project's datasets are FIBO). An existing
    dataset with a different
    ``upload_type`` or ``training_version`` is never reused silently
    (:class:`~airflow_provider_bria.exceptions.BriaConflictError`).

    Returns the dataset id; pushes XCom ``dataset_id``, ``dataset_url``, ``project_id``, ``project_url``.

    :param project_id: the project id (templated; int or numeric string).
    :param name: the dataset name, unique key within the project (templated).
    :param upload_type: ``basic`` (default; per-image upload, <= 200 images) or ``advanced`` (ZIP bulk
        upload, <= 5000 images) (templated).
    :param training_version: ``fibo``, ``max``, ``light``, ``3.2`` or ``2.3`` (templated; see above).
    :param if_exists: ``"reuse"`` (default) or ``"fail"``.
    """

    template_fields: Sequence[str] = (
        *BriaBaseOperator.template_fields, "project_id", "name", "upload_type", "training_version",
    )
    operator_extra_links = (BriaProjectLink(), BriaDatasetLink())
    state_key = "bria_created_dataset_id"

    def __init__(
        self,
        *,
        project_id: int | str,
        name: str,
        upload_type: str | UploadType = UploadType.BASIC.value,
        training_version: str | None = None,
        if_exists: str = IF_EXISTS_REUSE,
        **kwargs: Any,
    ) -> None:
        super().__init__(if_exists=if_exists, **kwargs)
        self.project_id = project_id
        self.name = name
        self.upload_type = enum_arg(upload_type, UploadType, "upload_type")
        self.training_version = training_version

    def execute(self, context: Any) -> int:
        """Find or create the dataset; return its id."""
        from airflow_provider_bria.results import loose

        project_id = coerce_id(self.project_id, "project_id")
        name = _validate_name(self.name, "name")
        upload_type = parse_enum(UploadType, self.upload_type, "upload_type").value
        version = canonical_training_version(self.training_version) if self.training_version else None
        sent_version = version  # training_version is not in Bria's spec: sent only when the user set it
        hook = self.hook
        project = loose(hook.get_project(project_id))
        project_version = project.get("training_version")
        if version is None and training_family(project_version) is TrainingFamily.FIBO:
            version = "fibo"  # what the project's lock gives the dataset; only used for the reuse check
        if version is not None:
            check_family_compatible(project_version, version)

        def check(existing: Mapping[str, Any]) -> None:
            diffs = []
            have_type = existing.get("upload_type")
            if have_type is not None and str(have_type) != upload_type:
                diffs.append(f"upload_type is {have_type!r}, not {upload_type!r}")
            have_version = existing.get("training_version")
            if version is not None and have_version is not None and canonical_training_version(have_version) != version:
                diffs.append(f"training_version is {have_version!r}, not {version!r}")
            refuse_if_different(f"Dataset {name!r} already exists in project {project_id} (id={existing.get('id')})",
                                diffs, "choose another name")
            if is_completed(existing):
                self.log.info("Dataset %s is already completed (frozen): images and schema can no longer change",
                              existing.get("id"))

        _, created, dataset_id = self.find_or_create(context, CreateSpec(
            what=f"dataset {name!r} in project {project_id}",
            find=lambda: hook.find_dataset(project_id, name),
            create=lambda: hook.create_dataset(project_id, name, upload_type=upload_type,
                                               training_version=sent_version),
            check=check,
        ))
        push_console_xcoms(context, hook.console_url, project_id=project_id, dataset_id=dataset_id)
        self.log.info("Dataset %r: id=%s (%s)", name, dataset_id, "created" if created else "reused")
        return dataset_id


# --------------------------------------------------------------------------------------------
# Update
# --------------------------------------------------------------------------------------------


class BriaUpdateDatasetOperator(BriaBaseOperator):
    """Update a dataset: rename it, set its visual schema (FIBO) or caption prefix (legacy), or complete it.

    The dataset is read first; only fields that differ are sent, in one ``PUT``. So a retry, or a run whose
    values are already in place, makes no change (and no call). Completing an already-completed dataset
    succeeds without a call; a 409 on completion is re-checked and counts as success if the dataset is
    completed. Checked client-side, before any call: at least one field; valid JSON schema; schema only on
    FIBO and prefix only on legacy datasets; no schema/prefix change on a completed dataset (clone it
    instead); enough images to complete (FIBO 5, legacy 1).

    Returns ``{"dataset_id", "status", "images_count", "updated": [field names sent]}``; pushes XCom
    ``dataset_id``/``dataset_url`` (and ``project_id``/``project_url``).

    :param dataset_id: the dataset id (templated; int or numeric string).
    :param name: new name (templated).
    :param visual_schema: the visual schema, as a dict or a JSON string (templated, e.g. from
        ``BriaGenerateVisualSchemaOperator``'s XCom).
    :param caption_prefix: legacy caption prefix (templated).
    :param status: ``"completed"`` to freeze the dataset for training (templated).
    """

    template_fields: Sequence[str] = (
        *BriaBaseOperator.template_fields, "dataset_id", "name", "visual_schema", "caption_prefix", "status",
    )
    template_fields_renderers = {"visual_schema": "json"}
    operator_extra_links = (BriaProjectLink(), BriaDatasetLink())

    def __init__(
        self,
        *,
        dataset_id: int | str,
        name: str | None = None,
        visual_schema: str | dict[str, Any] | None = None,
        caption_prefix: str | None = None,
        status: str | DatasetStatus | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id
        self.name = name
        self.visual_schema = visual_schema
        self.caption_prefix = caption_prefix
        self.status = status.value if isinstance(status, DatasetStatus) else status
        if name is None and visual_schema is None and caption_prefix is None and status is None:
            raise BriaInputError("BriaUpdateDatasetOperator needs at least one of name, visual_schema, "
                                 "caption_prefix or status")
        if self.status is not None and not is_templated(self.status):
            parse_enum(DatasetStatus, self.status, "status")

    def _plan(self, dataset: Mapping[str, Any]) -> dict[str, Any]:
        """Return the fields to send, after every client-side check."""
        dataset_id = dataset.get("id", self.dataset_id)
        family = dataset_family(dataset)
        changes: dict[str, Any] = {}
        if self.name is not None:
            name = _validate_name(self.name, "name")
            if dataset.get("name") != name:
                changes["name"] = name
        if self.visual_schema is not None:
            schema = json_text(self.visual_schema, "visual_schema")
            if family is not TrainingFamily.FIBO:
                raise BriaInputError(
                    f"visual_schema applies to FIBO datasets only; dataset {dataset_id} is "
                    f"{dataset.get('training_version')!r} (use caption_prefix)"
                )
            if not same_json(dataset.get("visual_schema"), schema):
                require_draft(dataset, "change its visual_schema")
                changes["visual_schema"] = schema
        if self.caption_prefix is not None:
            prefix = str(self.caption_prefix)
            if family is TrainingFamily.FIBO:
                raise BriaInputError(
                    f"caption_prefix applies to legacy datasets only; dataset {dataset_id} is FIBO "
                    "(use visual_schema)"
                )
            if dataset.get("caption_prefix") != prefix:
                require_draft(dataset, "change its caption_prefix")
                changes["caption_prefix"] = prefix
        if self.status is not None:
            status = parse_enum(DatasetStatus, self.status, "status").value
            if str(dataset.get("status") or "").lower() != status:
                if status == DatasetStatus.COMPLETED.value:
                    minimum = (FIBO_MIN_IMAGES_TO_COMPLETE if family is TrainingFamily.FIBO
                               else LEGACY_MIN_IMAGES_TO_COMPLETE)
                    count = images_count(dataset)
                    if count < minimum:
                        raise BriaInputError(
                            f"Dataset {dataset_id} has {count} image(s); a {family.value} dataset needs at least "
                            f"{minimum} to be completed. Upload more images first"
                        )
                    if family is TrainingFamily.FIBO and not (changes.get("visual_schema")
                                                              or dataset.get("visual_schema")):
                        self.log.warning("Completing FIBO dataset %s that has no visual_schema", dataset_id)
                changes["status"] = status
        return changes

    def execute(self, context: Any) -> dict[str, Any]:
        """Apply the changes that are not in place yet; return a summary."""
        dataset_id = coerce_id(self.dataset_id, "dataset_id")
        hook = self.hook
        dataset = hook.get_dataset(dataset_id, max_images=1)
        changes = self._plan(dataset)
        project_id = dataset_project_id(dataset)
        push_console_xcoms(context, hook.console_url, project_id=project_id, dataset_id=dataset_id)
        if not changes:
            self.log.info("Dataset %s already up to date (status=%s); nothing to send", dataset_id,
                          dataset.get("status"))
            return self._summary(dataset_id, dataset, [])
        self.log.info("Updating dataset %s: %s", dataset_id, ", ".join(sorted(changes)))
        try:
            updated = hook.update_dataset(dataset_id, **changes)
        except BriaConflictError as err:
            if changes.get("status") == DatasetStatus.COMPLETED.value:
                current = hook.get_dataset(dataset_id, max_images=1)
                remaining = {k: v for k, v in changes.items() if k != "status"}
                if is_completed(current) and all(
                    same_json(current.get(k), v) if k == "visual_schema" else current.get(k) == v
                    for k, v in remaining.items()
                ):
                    self.log.info("Dataset %s is completed (completed by an earlier attempt); done", dataset_id)
                    return self._summary(dataset_id, current, sorted(changes))
            raise conflict_from(err, f"Dataset {dataset_id} refused the update of {sorted(changes)}") from err
        if "visual_schema" in changes and images_count(dataset) > 0:
            self.log.warning(
                "Dataset %s already has %d image(s) captioned with the previous schema; run "
                "BriaRegenerateCaptionsOperator to recaption them", dataset_id, images_count(dataset),
            )
        merged = {**dataset, **(updated or {})}
        return self._summary(dataset_id, merged, sorted(changes))

    @staticmethod
    def _summary(dataset_id: int, dataset: Mapping[str, Any], updated: list[str]) -> dict[str, Any]:
        return {
            "dataset_id": dataset_id,
            "status": dataset.get("status"),
            "images_count": images_count(dataset),
            "updated": updated,
        }


# --------------------------------------------------------------------------------------------
# Clone
# --------------------------------------------------------------------------------------------


class BriaCloneDatasetOperator(BriaCreateOperatorBase):
    """Clone a dataset (usually a completed one) as a new draft with copies of its images.

    The clone's name within the project is the natural key: a dataset with that name is reused on retry or
    re-run (``if_exists="reuse"``), so neither makes a second copy. Without ``name`` the API's default
    ``"Copy of <source name>"`` is used (computed client-side so it can be looked up). A *completed* dataset
    with the target name is reused (and the log says so) when it is a clone of the same source, i.e. it
    holds every image name of the source (the API records no clone origin): that is a re-run of a run that
    went on to complete its clone. A completed dataset of that name that lacks source images is someone
    else's: :class:`~airflow_provider_bria.exceptions.BriaConflictError`.

    Returns the new dataset id; pushes XCom ``dataset_id``/``dataset_url`` (of the clone) and
    ``project_id``/``project_url``.

    :param dataset_id: the source dataset id (templated).
    :param name: the clone's name (templated); default ``"Copy of <source name>"``.
    :param description: the clone's description (templated); default the source's.
    :param if_exists: ``"reuse"`` (default) or ``"fail"``.
    """

    template_fields: Sequence[str] = (*BriaBaseOperator.template_fields, "dataset_id", "name", "description")
    operator_extra_links = (BriaProjectLink(), BriaDatasetLink())
    state_key = "bria_created_clone_id"

    def __init__(
        self,
        *,
        dataset_id: int | str,
        name: str | None = None,
        description: str | None = None,
        if_exists: str = IF_EXISTS_REUSE,
        **kwargs: Any,
    ) -> None:
        super().__init__(if_exists=if_exists, **kwargs)
        self.dataset_id = dataset_id
        self.name = name
        self.description = description

    def execute(self, context: Any) -> int:
        """Find or create the draft clone; return its id."""
        source_id = coerce_id(self.dataset_id, "dataset_id")
        hook = self.hook
        source = hook.get_dataset(source_id, max_images=1)
        project_id = dataset_project_id(source)
        if project_id is None:
            raise BriaConflictError(f"Dataset {source_id} has no project_id; cannot check for an existing clone")
        name = _validate_name(self.name, "name") if self.name is not None else f"Copy of {source.get('name')}"
        if name == source.get("name"):
            raise BriaInputError(f"The clone's name {name!r} is the source dataset's own name; choose another")

        def check(existing: Mapping[str, Any]) -> None:
            if not is_completed(existing):
                return
            missing = _missing_source_images(hook, source_id, existing)
            if missing:
                raise BriaConflictError(
                    f"A completed dataset named {name!r} already exists in project {project_id} "
                    f"(id={existing.get('id')}) but it is not a clone of dataset {source_id}: it lacks "
                    f"{len(missing)} of the source's images (e.g. {sorted(missing)[:3]}). Choose another name"
                )
            self.log.info(
                "Reusing the completed clone %r (id=%s) of dataset %s: a re-run of a finished clone; nothing is "
                "copied (it is frozen: its images and schema can no longer change)", name, existing.get("id"),
                source_id,
            )

        clone, created, clone_id = self.find_or_create(context, CreateSpec(
            what=f"clone {name!r} of dataset {source_id}",
            find=lambda: hook.find_dataset(project_id, name),
            create=lambda: hook.clone_dataset(source_id, name=name, description=self.description),
            check=check,
        ))
        push_console_xcoms(context, hook.console_url, project_id=project_id, dataset_id=clone_id)
        self.log.info("Clone %r of dataset %s: id=%s (%s, %d images)", name, source_id, clone_id,
                      "created" if created else "reused", images_count(clone))
        return clone_id


def _missing_source_images(hook: Any, source_id: int, candidate: Mapping[str, Any]) -> set[str]:
    """Image names of the source dataset that ``candidate`` lacks (empty: it is a clone of the source).

    :param hook: the hook.
    :param source_id: the source dataset.
    :param candidate: the existing dataset with the clone's name.
    """
    def names(dataset_id: Any) -> set[str]:
        return {str(img.get("image_name")) for img in hook.list_images(dataset_id) if img.get("image_name")}

    return names(source_id) - names(candidate.get("id"))


# --------------------------------------------------------------------------------------------
# Delete
# --------------------------------------------------------------------------------------------


class BriaDeleteDatasetOperator(BriaDeleteOperatorBase):
    """Delete a dataset and its images.

    Idempotent: a dataset that is already gone counts as deleted (unless ``missing_ok=False``). A dataset
    used by a model in training cannot be deleted (:class:`~airflow_provider_bria.exceptions.BriaConflictError`;
    stop the training first).

    Returns ``{"dataset_id": <id>, "deleted": <bool>}``.

    :param dataset_id: the dataset id (templated).
    :param missing_ok: treat a missing dataset as success (default ``True``).
    """

    template_fields: Sequence[str] = (*BriaBaseOperator.template_fields, "dataset_id")
    id_argument = "dataset_id"
    noun = "Dataset"
    deleted_message = "Deleted dataset %s and its images"
    delete_call = "delete_dataset"
    conflict_text = (
        "Dataset {id} cannot be deleted while a model trained on it is in training; "
        "stop the training first (BriaStopTrainingOperator), then retry"
    )

    def __init__(self, *, dataset_id: int | str, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id
        self.missing_ok = missing_ok
