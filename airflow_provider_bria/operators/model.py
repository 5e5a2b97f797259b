"""Operators for Bria tailored models: create (find-or-create) and delete. Training lives in operators.training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_bria.contract import (
    ModelStatus,
    TrainingMode,
    canonical_training_version,
    model_training_version,
    parse_enum,
    training_family,
)
from airflow_provider_bria.exceptions import BriaConflictError, BriaInputError
from airflow_provider_bria.links.bria import BriaDatasetLink, BriaModelLink, BriaProjectLink, push_console_xcoms
from airflow_provider_bria.operators._lifecycle import (
    BriaCreateOperatorBase,
    BriaDeleteOperatorBase,
    CreateSpec,
    enum_arg,
    refuse_if_different,
)
from airflow_provider_bria.operators._reconcile import IF_EXISTS_REUSE, coerce_id
from airflow_provider_bria.operators.base import BriaBaseOperator

_DEAD_END_STATUSES = ("Failed", "Stopped", "Stopping")


class BriaCreateModelOperator(BriaCreateOperatorBase):
    """Create a tailored model on a completed dataset, or reuse the dataset's model with the same name.

    The model name within the dataset is the natural key (look up before creating, and again after an
    ambiguous failure, so retries never duplicate it). The dataset is read first: an unknown dataset raises
    :class:`~airflow_provider_bria.exceptions.BriaNotFoundError`, a draft dataset
    :class:`~airflow_provider_bria.exceptions.BriaConflictError` (complete it first), and a
    ``training_version`` of the other family :class:`~airflow_provider_bria.exceptions.BriaInputError`, all
    before any change. ``training_version`` is not in Bria's current spec, so it is sent only when given;
    without it the model inherits its dataset's version (used for the reuse check). An existing model with
    another ``training_mode`` or ``training_version`` is never reused silently. Reusing a model that already
    ``Failed`` or was ``Stopped`` logs a warning: such a model cannot train again (use a new name, e.g. with
    ``{{ ds_nodash }}``).

    Returns the model id; pushes XCom ``model_id``/``model_url``, ``dataset_id``/``dataset_url`` and
    ``project_id``/``project_url``.

    :param dataset_id: the (completed) dataset id (templated).
    :param name: the model name, unique key within the dataset (templated).
    :param training_mode: ``fully_automated`` (default) or ``expert`` (templated).
    :param training_version: ``fibo``, ``max``, ``light``, ``bria-3.2`` or ``bria-2.3`` (templated).
    :param description: optional description (templated).
    :param if_exists: ``"reuse"`` (default) or ``"fail"``.
    """

    template_fields: Sequence[str] = (
        *BriaBaseOperator.template_fields, "dataset_id", "name", "training_mode", "training_version", "description",
    )
    operator_extra_links = (BriaProjectLink(), BriaDatasetLink(), BriaModelLink())
    state_key = "bria_created_model_id"

    def __init__(
        self,
        *,
        dataset_id: int | str,
        name: str,
        training_mode: str | TrainingMode = TrainingMode.FULLY_AUTOMATED.value,
        training_version: str | None = None,
        description: str | None = None,
        if_exists: str = IF_EXISTS_REUSE,
        **kwargs: Any,
    ) -> None:
        super().__init__(if_exists=if_exists, **kwargs)
        self.dataset_id = dataset_id
        self.name = name
        self.training_mode = enum_arg(training_mode, TrainingMode, "training_mode")
        self.training_version = training_version
        self.description = description

    def execute(self, context: Any) -> int:
        """Find or create the model; return its id."""
        # Here, not at the top: a DAG that only creates models does not define the dataset operators on every parse.
        from airflow_provider_bria.operators.dataset import dataset_project_id, is_completed

        dataset_id = coerce_id(self.dataset_id, "dataset_id")
        name = str(self.name) if self.name is not None else ""
        if not name.strip():
            raise BriaInputError("name is required and must not be empty")
        mode = parse_enum(TrainingMode, self.training_mode, "training_mode").value
        sent_version = model_training_version(self.training_version) if self.training_version else None
        hook = self.hook
        dataset = hook.get_dataset(dataset_id, max_images=1)
        version = self._effective_version(dataset_id, dataset, sent_version)

        def create() -> Mapping[str, Any]:
            if not is_completed(dataset):  # checked only when a model must really be created
                raise BriaConflictError(
                    f"Dataset {dataset_id} is {dataset.get('status')!r}: a model can only be created on a "
                    "completed dataset. Complete it first (BriaUpdateDatasetOperator(status='completed'))"
                )
            description = self.description if (self.description or "").strip() else None  # blank: not given
            # training_version is not in Bria's spec: sent only when the user set it
            return hook.create_model(
                dataset_id, name, training_mode=mode, training_version=sent_version, description=description,
            )

        model, created, model_id = self.find_or_create(context, CreateSpec(
            what=f"model {name!r} on dataset {dataset_id}",
            find=lambda: hook.find_model(dataset_id, name),
            create=create,
            check=lambda existing: self._check_reusable(existing, name, dataset_id, mode, version),
        ))
        project_id = dataset_project_id(dataset)
        project_id = project_id if project_id is not None else _int_or_none(model.get("project_id"))
        push_console_xcoms(context, hook.console_url, project_id=project_id, dataset_id=dataset_id,
                           model_id=model_id)
        self.log.info("Model %r: id=%s (%s, status %s)", name, model_id, "created" if created else "reused",
                      model.get("status"))
        return model_id

    def _effective_version(self, dataset_id: int, dataset: Mapping[str, Any], version: str | None) -> str | None:
        """The model's training version: the requested one (checked against the dataset's family), else the
        dataset's (used for the reuse check only)."""
        dataset_version = dataset.get("training_version")
        if version is None and dataset_version:
            version = model_training_version(dataset_version)
            self.log.info("The model inherits the dataset's training_version %r", version)
        if version is not None and dataset_version and training_family(version) is not training_family(dataset_version):
            raise BriaInputError(
                f"training_version {version!r} does not match dataset {dataset_id}'s {dataset_version!r}: "
                "FIBO datasets train FIBO models only, legacy datasets legacy models only"
            )
        return version

    def _check_reusable(
        self, existing: Mapping[str, Any], name: str, dataset_id: int, mode: str, version: str | None
    ) -> None:
        diffs = []
        have_mode = existing.get("training_mode")
        if have_mode is not None and str(have_mode) != mode:
            diffs.append(f"training_mode is {have_mode!r}, not {mode!r}")
        have_version = existing.get("training_version")
        if version is not None and have_version is not None and (
            canonical_training_version(have_version) != canonical_training_version(version)
        ):
            diffs.append(f"training_version is {have_version!r}, not {version!r}")
        refuse_if_different(f"Model {name!r} already exists on dataset {dataset_id} (id={existing.get('id')})",
                            diffs, "choose another name")
        if str(existing.get("status")) in _DEAD_END_STATUSES:
            self.log.warning(
                "Model %s (%r) is %s and cannot be trained again; create a model with a new name to retrain",
                existing.get("id"), name, existing.get("status"),
            )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class BriaDeleteModelOperator(BriaDeleteOperatorBase):
    """Delete a model (Bria marks it ``Deleted``).

    Idempotent: a model that is already gone counts as deleted (unless ``missing_ok=False``). A model in
    training cannot be deleted: :class:`~airflow_provider_bria.exceptions.BriaConflictError` says to stop it
    first (``BriaStopTrainingOperator``).

    Returns ``{"model_id": <id>, "deleted": <bool>}``.

    :param model_id: the model id (templated).
    :param missing_ok: treat a missing model as success (default ``True``).
    """

    template_fields: Sequence[str] = (*BriaBaseOperator.template_fields, "model_id")
    id_argument = "model_id"
    noun = "Model"
    deleted_message = "Deleted model %s"
    delete_call = "delete_model"

    def __init__(self, *, model_id: int | str, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_id = model_id
        self.missing_ok = missing_ok

    def conflict_message(self, object_id: int) -> str:
        """Say the model is training, with its status.

        :param object_id: the model id.
        """
        return (
            f"Model {object_id} cannot be deleted while it is training (status "
            f"{self._status(object_id) or 'unknown'}); stop it first with BriaStopTrainingOperator, wait until "
            "it is Stopped, then retry"
        )

    def _status(self, model_id: int) -> str | None:
        try:
            status = self.hook.get_model(model_id).get("status")
        except Exception:  # only used to improve an error message
            return None
        try:
            return ModelStatus.parse(str(status)).value
        except BriaInputError:
            return str(status)
