"""Datasets (contract §4.1-4.8) as methods of :class:`~airflow_provider_bria.hooks.bria.BriaHook`.

Every method validates its input with :mod:`airflow_provider_bria.contract` before sending anything. Reads,
updates and deletes are retried by the hook's policy; creations and clones (POST) are not blindly retried:
callers reconcile with :meth:`~BriaDatasetApiMixin.find_dataset`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_bria import contract
from airflow_provider_bria.contract import Paths
from airflow_provider_bria.exceptions import BriaInputError, BriaNotFoundError
from airflow_provider_bria.hooks import _inputs as inp
from airflow_provider_bria.hooks._base import HookSurface, as_dict, as_result, as_results, flag, single_match
from airflow_provider_bria.results import DatasetResult


class BriaDatasetApiMixin(HookSurface):
    """Dataset operations. Mixed into :class:`~airflow_provider_bria.hooks.bria.BriaHook`."""

    def create_dataset(
        self,
        project_id: int | str,
        name: str,
        *,
        upload_type: str | contract.UploadType = "basic",
        training_version: str | None = None,
    ) -> DatasetResult:
        """Create a draft dataset (``POST /v1/tailored-gen/datasets``). Not retried after it may have applied.

        :param project_id: the owning project.
        :param name: dataset name (reconcile on retry with :meth:`find_dataset`).
        :param upload_type: ``basic`` (<= 200 images, per-image upload) or ``advanced`` (zip bulk upload).
        :param training_version: ``fibo`` or a legacy version; any documented spelling, sent in dataset form.
            Not in the current (FIBO-only) spec: sent only when given.
        """
        body = inp.compact(
            project_id=inp.object_id(project_id, "project_id"),
            name=inp.non_empty(name, "name"),
            upload_type=contract.parse_enum(contract.UploadType, upload_type, "upload_type"),
            training_version=contract.canonical_training_version(training_version) if training_version else None,
        )
        return as_result(self.request("POST", Paths.DATASETS, json=body), DatasetResult)

    def list_datasets(self) -> list[DatasetResult]:
        """List all datasets of the organisation."""
        return as_results(self.request("GET", Paths.DATASETS), DatasetResult)

    def list_project_datasets(
        self, project_id: int | str, *, include_models: bool = False, include_models_ids: bool = False
    ) -> list[DatasetResult]:
        """List a project's datasets.

        :param project_id: the project id.
        :param include_models: add each dataset's ``models``.
        :param include_models_ids: add each dataset's ``model_ids`` (strings).
        """
        params: dict[str, str] = {}
        if include_models:
            params["include_models"] = flag(True)
        if include_models_ids:
            params["include_models_ids"] = flag(True)
        path = Paths.project_datasets(inp.object_id(project_id, "project_id"))
        return as_results(self.request("GET", path, params=params or None), DatasetResult)

    def get_dataset(self, dataset_id: int | str, *, max_images: int | None = None) -> DatasetResult:
        """Get a dataset with its ``images`` (up to ``max_images``, server default 200).

        :param dataset_id: the dataset id.
        :param max_images: 1-200.
        """
        did = inp.object_id(dataset_id, "dataset_id")
        params = None
        if max_images is not None:
            if isinstance(max_images, bool) or not isinstance(max_images, int) or not (
                contract.MAX_IMAGES_QUERY_MIN <= max_images <= contract.MAX_IMAGES_QUERY_MAX
            ):
                raise BriaInputError(
                    f"max_images must be an integer between {contract.MAX_IMAGES_QUERY_MIN} and "
                    f"{contract.MAX_IMAGES_QUERY_MAX}, got {max_images!r}"
                )
            params = {"max_images": max_images}
        return as_result(self.request("GET", Paths.dataset(did), params=params), DatasetResult)

    def update_dataset(
        self,
        dataset_id: int | str,
        *,
        name: str | None = None,
        visual_schema: str | Mapping[str, Any] | None = None,
        caption_prefix: str | None = None,
        status: str | contract.DatasetStatus | None = None,
    ) -> DatasetResult:
        """Update a dataset (``PUT``; idempotent). ``status="completed"`` freezes it for training.

        :param dataset_id: the dataset id.
        :param name: new name.
        :param visual_schema: FIBO visual schema: a JSON string (a dict is serialised); draft datasets only.
        :param caption_prefix: legacy caption prefix; draft datasets only. Not in the current spec: sent only
            when given.
        :param status: ``draft`` or ``completed``.
        """
        did = inp.object_id(dataset_id, "dataset_id")
        body = inp.compact(
            name=inp.non_empty(name, "name") if name is not None else None,
            visual_schema=inp.json_string(visual_schema, "visual_schema") if visual_schema is not None else None,
            caption_prefix=caption_prefix,
            status=contract.parse_enum(contract.DatasetStatus, status, "status") if status is not None else None,
        )
        if not body:
            raise BriaInputError("update_dataset needs at least one field to change")
        return as_result(self.request("PUT", Paths.dataset(did), json=body), DatasetResult)

    def delete_dataset(self, dataset_id: int | str) -> None:
        """Delete a dataset and its images (409 while a model using it trains).

        :param dataset_id: the dataset id.
        """
        self.request("DELETE", Paths.dataset(inp.object_id(dataset_id, "dataset_id")))

    def clone_dataset(
        self, dataset_id: int | str, *, name: str | None = None, description: str | None = None
    ) -> DatasetResult:
        """Clone a dataset as a new draft (``POST .../clone``; not blindly retried).

        :param dataset_id: the dataset to copy.
        :param name: the clone's name (server default ``Copy of <name>``).
        :param description: the clone's description.
        """
        did = inp.object_id(dataset_id, "dataset_id")
        if name is not None:
            inp.non_empty(name, "name")
        body = inp.compact(name=name, description=description)
        return as_result(self.request("POST", Paths.dataset_clone(did), json=body), DatasetResult)

    def download_dataset(self, dataset_id: int | str) -> dict[str, Any]:
        """Get pre-signed download URLs of an advanced dataset (``download_url``, maybe ``captions_url``).

        The documented path is ``/v1/datasets/{id}/download`` (no ``tailored-gen`` segment, possibly a spec
        typo); on 404 the ``/v1/tailored-gen/...`` spelling is tried before giving up.

        :param dataset_id: the dataset id.
        """
        did = inp.object_id(dataset_id, "dataset_id")
        try:
            return as_dict(self.request("GET", Paths.dataset_download(did)))
        except BriaNotFoundError as first:
            try:
                return as_dict(self.request("GET", f"{Paths.dataset(did)}/download"))
            except BriaNotFoundError:
                raise first from None

    def find_dataset(self, project_id: int | str, name: str) -> DatasetResult | None:
        """Return the project's dataset with exactly this name, or ``None``.

        :param project_id: the project id.
        :param name: the exact dataset name.
        :raises BriaConflictError: when several datasets of the project have that name.
        """
        wanted = inp.non_empty(name, "name")
        matches = [d for d in self.list_project_datasets(project_id) if d.get("name") == wanted]
        return single_match(matches, f"datasets named {wanted!r} in project {project_id}")
