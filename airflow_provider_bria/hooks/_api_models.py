"""Models, training and checkpoints (contract §6) as methods of :class:`BriaHook` (the schema and caption
helpers of §5 come from :mod:`._api_schema`).

``create_model``, ``start_training``, ``stop_training`` and ``upload_model`` are
never blindly retried after the request may have been applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_bria import contract
from airflow_provider_bria.contract import Paths
from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.hooks import _inputs as inp
from airflow_provider_bria.hooks._api_schema import BriaSchemaApiMixin
from airflow_provider_bria.hooks._base import as_dict, as_list, as_result, as_results, single_match
from airflow_provider_bria.results import ModelResult

_PROJECT_PARAMETER_KEYS = frozenset(
    {"project_name", "ip_medium", "project_description", "ip_type", "ip_name", "ip_description"}
)


class BriaModelApiMixin(BriaSchemaApiMixin):
    """Helper, model and training operations. Mixed into :class:`~airflow_provider_bria.hooks.bria.BriaHook`."""

    # ------------------------------------------------------------------ models (§6.1-6.6)

    def create_model(
        self,
        dataset_id: int | str,
        name: str,
        *,
        training_mode: str | contract.TrainingMode = "fully_automated",
        training_version: str | None = None,
        description: str | None = None,
    ) -> ModelResult:
        """Create a model on a completed dataset (``POST``; not blindly retried: reconcile with :meth:`find_model`).

        :param dataset_id: the training dataset.
        :param name: model name.
        :param training_mode: ``fully_automated`` or ``expert``.
        :param training_version: ``fibo`` or a legacy version, any spelling; sent in model form (``bria-3.2``).
            Not in the current spec: sent only when given.
        :param description: optional description.
        """
        body = inp.compact(
            dataset_id=inp.object_id(dataset_id, "dataset_id"),
            name=inp.non_empty(name, "name"),
            training_mode=contract.parse_enum(contract.TrainingMode, training_mode, "training_mode"),
            training_version=contract.model_training_version(training_version) if training_version else None,
            description=description,
        )
        return as_result(self.request("POST", Paths.MODELS, json=body), ModelResult)

    def list_models(self, *, include_training_parameters: bool = False) -> list[ModelResult]:
        """List all models of the organisation.

        :param include_training_parameters: include ``training_parameters`` and ``checkpoint_steps``.
        """
        params = {"include_training_parameters": "true"} if include_training_parameters else None
        return as_results(self.request("GET", Paths.MODELS, params=params), ModelResult)

    def list_project_models(
        self, project_id: int | str, *, include_training_parameters: bool = False
    ) -> list[ModelResult]:
        """List a project's models.

        :param project_id: the project id.
        :param include_training_parameters: include ``training_parameters`` and ``checkpoint_steps``.
        """
        params = {"include_training_parameters": "true"} if include_training_parameters else None
        path = Paths.project_models(inp.object_id(project_id, "project_id"))
        return as_results(self.request("GET", path, params=params), ModelResult)

    def get_model(self, model_id: int | str) -> ModelResult:
        """Get a model (the training poll: ``status`` is ``Created``/``InProgress``/``Completed``/...).

        :param model_id: the model id.
        """
        return as_result(self.request("GET", Paths.model(inp.object_id(model_id, "model_id"))), ModelResult)

    def update_model(
        self, model_id: int | str, *, name: str | None = None, description: str | None = None
    ) -> ModelResult:
        """Rename or re-describe a model (``PUT``; idempotent).

        :param model_id: the model id.
        :param name: new name.
        :param description: new description.
        """
        mid = inp.object_id(model_id, "model_id")
        if name is not None:
            inp.non_empty(name, "name")
        body = inp.compact(name=name, description=description)
        if not body:
            raise BriaInputError("update_model needs name and/or description")
        return as_result(self.request("PUT", Paths.model(mid), json=body), ModelResult)

    def delete_model(self, model_id: int | str) -> None:
        """Delete a model (409 while it trains).

        :param model_id: the model id.
        """
        self.request("DELETE", Paths.model(inp.object_id(model_id, "model_id")))

    def find_model(self, dataset_id: int | str, name: str) -> ModelResult | None:
        """Return the (not deleted) model of this dataset with exactly this name, or ``None``.

        :param dataset_id: the dataset the model trains on.
        :param name: the exact model name.
        :raises BriaConflictError: when several models match.
        """
        did = inp.object_id(dataset_id, "dataset_id")
        wanted = inp.non_empty(name, "name")
        matches = [
            m
            for m in self.list_models()
            if m.get("name") == wanted
            and str(m.get("dataset_id")) == str(did)
            and str(m.get("status", "")).lower() != contract.ModelStatus.DELETED.value.lower()
        ]
        return single_match(matches, f"models named {wanted!r} on dataset {did}")

    # ------------------------------------------------------------------ training (§6.7-6.8)

    def start_training(self, model_id: int | str, training_parameters: dict[str, Any] | None = None) -> ModelResult:
        """Start training (``POST .../start_training``; not blindly retried: check :meth:`get_model`).

        Expert parameters are type- and range-checked against the spec; unknown keys and a
        ``checkpoint_interval`` above the total steps are sent as given with a logged warning (the spec does not
        forbid them). Whether the model is ``expert`` is the caller's check.

        :param model_id: the model id (status ``Created``).
        :param training_parameters: expert parameters (``learning_rate``, ``total_training_steps``,
            ``rank``, ``checkpoint_interval``, ``lr_warmup_steps``, ``lr_scheduler``); ``None`` sends ``{}``.
        :returns: the model (``status`` ``InProgress``).
        """
        mid = inp.object_id(model_id, "model_id")
        if training_parameters is not None and not isinstance(training_parameters, Mapping):
            raise BriaInputError("training_parameters must be a dict")
        body = contract.validate_training_parameters(None, training_parameters)
        return as_result(self.request("POST", Paths.start_training(mid), json=body), ModelResult)

    def stop_training(self, model_id: int | str) -> dict[str, Any] | None:
        """Stop a training (irreversible; ``POST``, not blindly retried). 409 when not training.

        :param model_id: the model id.
        :returns: the server's body (undocumented: the model, or ``None`` when empty).
        """
        resp = self.request("POST", Paths.stop_training(inp.object_id(model_id, "model_id")))
        return dict(resp) if isinstance(resp, Mapping) else None

    # ------------------------------------------------------------------ checkpoints, download, upload (§6.9-6.11)

    def list_checkpoints(self, model_id: int | str) -> dict[str, Any]:
        """List an expert model's checkpoints: ``{"checkpoints": [...], "active_model_version": "..."}``.

        :param model_id: a ``Completed`` expert model.
        """
        body = self.request("GET", Paths.model_checkpoints(inp.object_id(model_id, "model_id")))
        if isinstance(body, list):
            return {"checkpoints": body, "active_model_version": None}
        return as_dict(body)

    def get_checkpoint(self, model_id: int | str, step: int | str) -> dict[str, Any]:
        """Get one checkpoint (``checkpoint_step``, ``training_job_id``, ``created_at``).

        :param model_id: the model id.
        :param step: the checkpoint step.
        """
        path = Paths.model_checkpoint(inp.object_id(model_id, "model_id"), inp.checkpoint_step(step))
        return as_dict(self.request("GET", path))

    def delete_checkpoint(self, model_id: int | str, step: int | str) -> None:
        """Delete a checkpoint (400 when it is the one selected for inference).

        :param model_id: the model id.
        :param step: the checkpoint step.
        """
        path = Paths.model_checkpoint(inp.object_id(model_id, "model_id"), inp.checkpoint_step(step))
        self.request("DELETE", path)

    def download_model(self, model_id: int | str) -> dict[str, Any]:
        """Get a pre-signed ``download_url`` of the model weights (``base_model_name``, ``base_model_card``).

        :param model_id: the model id.
        """
        return as_dict(self.request("GET", Paths.model_download(inp.object_id(model_id, "model_id"))))

    def upload_model(
        self,
        model_url: str,
        *,
        model_name: str | None = None,
        project_id: int | str | None = None,
        project_parameters: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register an externally trained ``.safetensors`` model (legacy; ``POST``, not blindly retried).

        :param model_url: public URL of the weights (<= 3 GB).
        :param model_name: the model's name.
        :param project_id: an existing project; exclusive with ``project_parameters``.
        :param project_parameters: a new project: ``project_name``, ``ip_medium``, optional
            ``project_description`` and ``ip_type`` (default ``other``); ``ip_name``/``ip_description``
            are passed through for the IP types that need them.
        :returns: the model (status ``syncing``, then ``completed``).
        """
        if (project_id is None) == (project_parameters is None):
            raise BriaInputError("upload_model needs exactly one of project_id or project_parameters")
        params: dict[str, Any] | None = None
        if project_parameters is not None:
            if not isinstance(project_parameters, Mapping):
                raise BriaInputError("project_parameters must be a dict")
            unknown = set(project_parameters) - _PROJECT_PARAMETER_KEYS
            if unknown:
                raise BriaInputError(f"Unknown project_parameters keys: {sorted(unknown)}")
            ip_type = project_parameters.get("ip_type") or contract.IpType.OTHER.value
            contract.validate_project_fields(
                project_name=project_parameters.get("project_name"),
                ip_type=ip_type,
                ip_medium=project_parameters.get("ip_medium"),
                ip_name=project_parameters.get("ip_name"),
                ip_description=project_parameters.get("ip_description"),
                strict=False,
            )
            params = inp.compact(
                project_name=project_parameters["project_name"],
                ip_medium=contract.parse_enum(contract.IpMedium, project_parameters["ip_medium"], "ip_medium"),
                project_description=project_parameters.get("project_description"),
                ip_type=contract.parse_enum(contract.IpType, ip_type, "ip_type"),
                ip_name=project_parameters.get("ip_name"),
                ip_description=project_parameters.get("ip_description"),
            )
        body = inp.compact(
            model_url=inp.http_url(model_url, "model_url"),
            model_name=inp.non_empty(model_name, "model_name") if model_name is not None else None,
            project_id=inp.object_id(project_id, "project_id") if project_id is not None else None,
            project_parameters=params,
        )
        return as_dict(self.request("POST", Paths.UPLOAD_MODEL, json=body))


__all__ = ["BriaModelApiMixin", "as_dict", "as_list"]
