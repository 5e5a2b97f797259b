"""Projects (contract §3) as methods of :class:`~airflow_provider_bria.hooks.bria.BriaHook`.

Every method validates its input with :mod:`airflow_provider_bria.contract` before sending anything. Reads,
updates and deletes are retried by the hook's policy; ``create_project`` is not blindly retried: callers
reconcile with :meth:`~BriaProjectApiMixin.find_project`.
"""

from __future__ import annotations

from airflow_provider_bria import contract
from airflow_provider_bria.contract import Paths
from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.hooks import _inputs as inp
from airflow_provider_bria.hooks._base import HookSurface, as_result, as_results, single_match
from airflow_provider_bria.results import ProjectResult


class BriaProjectApiMixin(HookSurface):
    """Project operations. Mixed into :class:`~airflow_provider_bria.hooks.bria.BriaHook`."""

    def create_project(
        self,
        project_name: str,
        ip_medium: str | contract.IpMedium,
        ip_type: str | contract.IpType,
        *,
        project_description: str | None = None,
        ip_name: str | None = None,
        ip_description: str | None = None,
        training_version: str | None = None,
    ) -> ProjectResult:
        """Create a project (``POST /v1/tailored-gen/projects``). Not retried after it may have been applied.

        :param project_name: project name (reconcile on retry with :meth:`find_project`).
        :param ip_medium: ``photography`` or ``illustration``.
        :param ip_type: one of :class:`~airflow_provider_bria.contract.IpType`.
        :param project_description: optional description.
        :param ip_name: character name, required for ``defined_character`` (Bria advises 1-3 words: more is
            a logged warning).
        :param ip_description: required for ``defined_character`` and ``object_variants`` (Bria advises up
            to 6 words: more is a logged warning; Bria's own example has 9).
        :param training_version: lock the project to a family at once (``fibo`` or a legacy version). Not in
            the current spec: sent only when given.
        :returns: the created project.
        """
        contract.validate_project_fields(
            project_name=project_name,
            ip_type=ip_type,
            ip_medium=ip_medium,
            ip_name=ip_name,
            ip_description=ip_description,
            training_version=training_version,
            strict=False,
        )
        body = inp.compact(
            project_name=project_name,
            project_description=project_description,
            ip_name=ip_name,
            ip_description=ip_description,
            ip_medium=contract.parse_enum(contract.IpMedium, ip_medium, "ip_medium"),
            ip_type=contract.parse_enum(contract.IpType, ip_type, "ip_type"),
            training_version=contract.canonical_training_version(training_version) if training_version else None,
        )
        return as_result(self.request("POST", Paths.PROJECTS, json=body), ProjectResult)

    def list_projects(self) -> list[ProjectResult]:
        """List all projects of the organisation (``GET /v1/tailored-gen/projects``)."""
        return as_results(self.request("GET", Paths.PROJECTS), ProjectResult)

    def get_project(self, project_id: int | str) -> ProjectResult:
        """Get a project.

        :param project_id: the project id.
        :raises BriaNotFoundError: when it does not exist.
        """
        path = Paths.project(inp.object_id(project_id, "project_id"))
        return as_result(self.request("GET", path), ProjectResult)

    def update_project(
        self,
        project_id: int | str,
        *,
        project_name: str | None = None,
        project_description: str | None = None,
        ip_name: str | None = None,
        ip_description: str | None = None,
    ) -> ProjectResult:
        """Update a project's name, description, ip_name or ip_description (``PUT``; idempotent).

        :param project_id: the project id.
        :param project_name: new name (non-empty).
        :param project_description: new description.
        :param ip_name: new character name (1-3 words advised; more is a logged warning).
        :param ip_description: new IP description (up to 6 words advised; more is a logged warning).
        """
        pid = inp.object_id(project_id, "project_id")
        if project_name is not None:
            inp.non_empty(project_name, "project_name")
        contract.check_ip_words(ip_name, ip_description, strict=False)
        body = inp.compact(
            project_name=project_name,
            project_description=project_description,
            ip_name=ip_name,
            ip_description=ip_description,
        )
        if not body:
            raise BriaInputError("update_project needs at least one field to change")
        return as_result(self.request("PUT", Paths.project(pid), json=body), ProjectResult)

    def delete_project(self, project_id: int | str) -> None:
        """Delete a project with all its datasets, images and models (409 while a model trains).

        :param project_id: the project id.
        """
        self.request("DELETE", Paths.project(inp.object_id(project_id, "project_id")))

    def find_project(self, project_name: str) -> ProjectResult | None:
        """Return the project with exactly this name, or ``None``.

        :param project_name: the exact project name.
        :raises BriaConflictError: when several projects have that name.
        """
        name = inp.non_empty(project_name, "project_name")
        matches = [p for p in self.list_projects() if p.get("project_name") == name]
        return single_match(matches, f"projects named {name!r}")
