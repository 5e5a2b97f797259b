"""Operators for Bria Tailored Generation projects: create (find-or-create) and delete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_bria.contract import (
    IpMedium,
    IpType,
    canonical_training_version,
    training_family,
    validate_project_fields,
)
from airflow_provider_bria.links.bria import BriaProjectLink, push_console_xcoms
from airflow_provider_bria.operators._lifecycle import (
    BriaCreateOperatorBase,
    BriaDeleteOperatorBase,
    CreateSpec,
    enum_arg,
    refuse_if_different,
)
from airflow_provider_bria.operators._reconcile import IF_EXISTS_REUSE
from airflow_provider_bria.operators.base import BriaBaseOperator


class BriaCreateProjectOperator(BriaCreateOperatorBase):
    """Create a Tailored Generation project, or reuse the one with the same name.

    The project name is the natural key. Before creating, the operator looks the name up; after an ambiguous
    failure (5xx, timeout, dropped connection) it looks again before trying once more, so Airflow retries
    never create a duplicate. An existing project whose ``ip_type``, ``ip_medium`` or locked training family
    differs from the request is never reused silently: :class:`~airflow_provider_bria.exceptions.BriaConflictError`.

    Returns the project id; pushes XCom ``project_id`` and ``project_url``.

    :param project_name: the project's name, unique key (templated).
    :param ip_medium: ``photography`` or ``illustration`` (templated).
    :param ip_type: one of :class:`~airflow_provider_bria.contract.IpType` (templated).
    :param project_description: optional description (templated).
    :param ip_name: character name, required for ``defined_character``, 1-3 words advised (templated).
    :param ip_description: required for ``defined_character`` and ``object_variants``, at most 6 words
        (templated).
    :param training_version: lock the project to a family at once (``fibo``, or a legacy version)
        (templated). By default the project locks to its first dataset's version.
    :param if_exists: ``"reuse"`` (default) returns an existing project with that name; ``"fail"`` raises
        :class:`~airflow_provider_bria.exceptions.BriaConflictError` (a project created by an earlier try
        of the same task instance is still recognised as its own on Airflow 3.3+).
    """

    template_fields: Sequence[str] = (
        *BriaBaseOperator.template_fields,
        "project_name",
        "ip_medium",
        "ip_type",
        "project_description",
        "ip_name",
        "ip_description",
        "training_version",
    )
    operator_extra_links = (BriaProjectLink(),)
    state_key = "bria_created_project_id"

    def __init__(
        self,
        *,
        project_name: str,
        ip_medium: str | IpMedium,
        ip_type: str | IpType,
        project_description: str | None = None,
        ip_name: str | None = None,
        ip_description: str | None = None,
        training_version: str | None = None,
        if_exists: str = IF_EXISTS_REUSE,
        **kwargs: Any,
    ) -> None:
        super().__init__(if_exists=if_exists, **kwargs)
        self.project_name = project_name
        # Parse-time errors for literal enum values; templated values are checked in execute().
        self.ip_medium = enum_arg(ip_medium, IpMedium, "ip_medium")
        self.ip_type = enum_arg(ip_type, IpType, "ip_type")
        self.project_description = project_description
        self.ip_name = ip_name
        self.ip_description = ip_description
        self.training_version = training_version

    def _check_reusable(self, existing: Mapping[str, Any]) -> None:
        ident = existing.get("id")
        diffs = []
        for field, wanted in (("ip_type", self.ip_type), ("ip_medium", self.ip_medium)):
            have = existing.get(field)
            if have is not None and str(have) != str(wanted):
                diffs.append(f"{field} is {have!r}, not {wanted!r}")
        have_version = existing.get("training_version")
        if self.training_version and have_version and (
            training_family(have_version) is not training_family(self.training_version)
        ):
            diffs.append(f"training_version is locked to {have_version!r}, not {self.training_version!r}")
        refuse_if_different(f"Project {self.project_name!r} already exists (id={ident})", diffs,
                            "choose another project_name or fix the arguments")
        for field in ("project_description", "ip_name", "ip_description"):
            wanted = getattr(self, field)
            if wanted is not None and existing.get(field) not in (None, wanted):
                self.log.warning(
                    "Reused project %s has %s=%r (requested %r); left unchanged", ident, field,
                    existing.get(field), wanted,
                )

    def execute(self, context: Any) -> int:
        """Find or create the project; return its id."""
        for field in ("project_description", "ip_name", "ip_description"):  # a blank (templated) value: not given
            if isinstance(getattr(self, field), str) and not getattr(self, field).strip():
                setattr(self, field, None)
        validate_project_fields(
            project_name=self.project_name,
            ip_type=self.ip_type,
            ip_medium=self.ip_medium,
            ip_name=self.ip_name,
            ip_description=self.ip_description,
            training_version=self.training_version,
            strict=False,
        )
        version = canonical_training_version(self.training_version) if self.training_version else None
        hook = self.hook
        name = str(self.project_name)
        _, created, project_id = self.find_or_create(context, CreateSpec(
            what=f"project {name!r}",
            find=lambda: hook.find_project(name),
            create=lambda: hook.create_project(
                name, str(self.ip_medium), str(self.ip_type), project_description=self.project_description,
                ip_name=self.ip_name, ip_description=self.ip_description, training_version=version,
            ),
            check=self._check_reusable,
        ))
        push_console_xcoms(context, hook.console_url, project_id=project_id)
        self.log.info("Project %r: id=%s (%s)", name, project_id, "created" if created else "reused")
        return project_id


class BriaDeleteProjectOperator(BriaDeleteOperatorBase):
    """Delete a project with all its datasets, images and models.

    Idempotent: a project that is already gone counts as deleted (unless ``missing_ok=False``), so a retry
    after a delete whose response was lost succeeds. A project with a model in training cannot be deleted:
    :class:`~airflow_provider_bria.exceptions.BriaConflictError` names the training models (stop them first
    with ``BriaStopTrainingOperator``).

    Returns ``{"project_id": <id>, "deleted": <bool>}`` (``deleted`` is ``False`` when it was already gone).

    :param project_id: the project id (templated; int or numeric string).
    :param missing_ok: treat a missing project as success (default ``True``).
    """

    template_fields: Sequence[str] = (*BriaBaseOperator.template_fields, "project_id")
    id_argument = "project_id"
    noun = "Project"
    deleted_message = "Deleted project %s with all its datasets, images and models"
    delete_call = "delete_project"

    def __init__(self, *, project_id: int | str, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project_id = project_id
        self.missing_ok = missing_ok

    def _training_models(self, project_id: int) -> list[int]:
        try:
            models = self.hook.list_project_models(project_id)
        except Exception:  # only used to improve an error message
            return []
        return [m["id"] for m in models
                if m.get("status") in ("InProgress", "Stopping") and isinstance(m.get("id"), int)]

    def conflict_message(self, object_id: int) -> str:
        """Name the models in training that block the delete.

        :param object_id: the project id.
        """
        training = self._training_models(object_id)
        detail = f" (training models: {training})" if training else ""
        return (
            f"Project {object_id} cannot be deleted while models are training{detail}; "
            "stop them first (BriaStopTrainingOperator), wait until they are Stopped, then retry"
        )
