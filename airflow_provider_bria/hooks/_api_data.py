"""Projects, datasets, dataset images and bulk upload (contract §3-§4) as methods of :class:`BriaHook`.

Every method validates its input with :mod:`airflow_provider_bria.contract` before sending anything. Reads,
updates and deletes are retried by the hook's policy; creations (POST) are not blindly retried: callers
reconcile with the ``find_*`` helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO

from airflow_provider_bria import contract
from airflow_provider_bria.contract import Paths
from airflow_provider_bria.exceptions import BriaConflictError, BriaInputError, BriaNotFoundError
from airflow_provider_bria.hooks import _inputs as inp

_LIST_KEYS = ("items", "data", "results", "projects", "datasets", "models", "images")
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def as_list(body: Any) -> list[dict[str, Any]]:
    """Return a list body as a list of dicts (a bare array is documented; a wrapper object is tolerated).

    :param body: the decoded body.
    """
    if body is None:
        return []
    if isinstance(body, list):
        return [dict(item) for item in body if isinstance(item, Mapping)]
    if isinstance(body, Mapping):
        for key in _LIST_KEYS:
            if isinstance(body.get(key), list):
                return [dict(item) for item in body[key] if isinstance(item, Mapping)]
    return []


def as_dict(body: Any) -> dict[str, Any]:
    """Return an object body as a dict (``{}`` for an empty body).

    :param body: the decoded body.
    """
    return dict(body) if isinstance(body, Mapping) else {}


def single_match(items: list[dict[str, Any]], what: str) -> dict[str, Any] | None:
    """Return the only item, ``None`` when empty, or raise :class:`BriaConflictError` when ambiguous.

    :param items: the matching objects.
    :param what: a description for the message.
    """
    if not items:
        return None
    if len(items) > 1:
        ids = sorted(str(i.get("id")) for i in items)
        raise BriaConflictError(f"{len(items)} {what} match (ids {', '.join(ids)}); cannot pick one safely")
    return items[0]


def _flag(value: bool) -> str:
    return "true" if value else "false"


class BriaDataApiMixin:
    """Project, dataset and image operations. Mixed into :class:`~airflow_provider_bria.hooks.bria.BriaHook`."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:  # pragma: no cover - provided by the hook
        raise NotImplementedError

    # ------------------------------------------------------------------ projects (§3)

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
    ) -> dict[str, Any]:
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
        return as_dict(self.request("POST", Paths.PROJECTS, json=body))

    def list_projects(self) -> list[dict[str, Any]]:
        """List all projects of the organisation (``GET /v1/tailored-gen/projects``)."""
        return as_list(self.request("GET", Paths.PROJECTS))

    def get_project(self, project_id: int | str) -> dict[str, Any]:
        """Get a project.

        :param project_id: the project id.
        :raises BriaNotFoundError: when it does not exist.
        """
        return as_dict(self.request("GET", Paths.project(inp.object_id(project_id, "project_id"))))

    def update_project(
        self,
        project_id: int | str,
        *,
        project_name: str | None = None,
        project_description: str | None = None,
        ip_name: str | None = None,
        ip_description: str | None = None,
    ) -> dict[str, Any]:
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
        return as_dict(self.request("PUT", Paths.project(pid), json=body))

    def delete_project(self, project_id: int | str) -> None:
        """Delete a project with all its datasets, images and models (409 while a model trains).

        :param project_id: the project id.
        """
        self.request("DELETE", Paths.project(inp.object_id(project_id, "project_id")))

    def find_project(self, project_name: str) -> dict[str, Any] | None:
        """Return the project with exactly this name, or ``None``.

        :param project_name: the exact project name.
        :raises BriaConflictError: when several projects have that name.
        """
        name = inp.non_empty(project_name, "project_name")
        matches = [p for p in self.list_projects() if p.get("project_name") == name]
        return single_match(matches, f"projects named {name!r}")

    # ------------------------------------------------------------------ datasets (§4.1-4.8)

    def create_dataset(
        self,
        project_id: int | str,
        name: str,
        *,
        upload_type: str | contract.UploadType = "basic",
        training_version: str | None = None,
    ) -> dict[str, Any]:
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
        return as_dict(self.request("POST", Paths.DATASETS, json=body))

    def list_datasets(self) -> list[dict[str, Any]]:
        """List all datasets of the organisation."""
        return as_list(self.request("GET", Paths.DATASETS))

    def list_project_datasets(
        self, project_id: int | str, *, include_models: bool = False, include_models_ids: bool = False
    ) -> list[dict[str, Any]]:
        """List a project's datasets.

        :param project_id: the project id.
        :param include_models: add each dataset's ``models``.
        :param include_models_ids: add each dataset's ``model_ids`` (strings).
        """
        params = {}
        if include_models:
            params["include_models"] = _flag(True)
        if include_models_ids:
            params["include_models_ids"] = _flag(True)
        path = Paths.project_datasets(inp.object_id(project_id, "project_id"))
        return as_list(self.request("GET", path, params=params or None))

    def get_dataset(self, dataset_id: int | str, *, max_images: int | None = None) -> dict[str, Any]:
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
        return as_dict(self.request("GET", Paths.dataset(did), params=params))

    def update_dataset(
        self,
        dataset_id: int | str,
        *,
        name: str | None = None,
        visual_schema: str | Mapping[str, Any] | None = None,
        caption_prefix: str | None = None,
        status: str | contract.DatasetStatus | None = None,
    ) -> dict[str, Any]:
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
        return as_dict(self.request("PUT", Paths.dataset(did), json=body))

    def delete_dataset(self, dataset_id: int | str) -> None:
        """Delete a dataset and its images (409 while a model using it trains).

        :param dataset_id: the dataset id.
        """
        self.request("DELETE", Paths.dataset(inp.object_id(dataset_id, "dataset_id")))

    def clone_dataset(
        self, dataset_id: int | str, *, name: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        """Clone a dataset as a new draft (``POST .../clone``; not blindly retried).

        :param dataset_id: the dataset to copy.
        :param name: the clone's name (server default ``Copy of <name>``).
        :param description: the clone's description.
        """
        did = inp.object_id(dataset_id, "dataset_id")
        if name is not None:
            inp.non_empty(name, "name")
        body = inp.compact(name=name, description=description)
        return as_dict(self.request("POST", Paths.dataset_clone(did), json=body))

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

    def find_dataset(self, project_id: int | str, name: str) -> dict[str, Any] | None:
        """Return the project's dataset with exactly this name, or ``None``.

        :param project_id: the project id.
        :param name: the exact dataset name.
        :raises BriaConflictError: when several datasets of the project have that name.
        """
        wanted = inp.non_empty(name, "name")
        matches = [d for d in self.list_project_datasets(project_id) if d.get("name") == wanted]
        return single_match(matches, f"datasets named {wanted!r} in project {project_id}")

    # ------------------------------------------------------------------ images (§4.9-4.14)

    def upload_image(
        self,
        dataset_id: int | str,
        *,
        file: bytes | BinaryIO | None = None,
        image_url: str | None = None,
        image_name: str | None = None,
        increase_resolution: bool | None = None,
        content_moderation: bool | None = None,
        encoding: str | None = None,
    ) -> dict[str, Any]:
        """Upload one image to a basic dataset (``POST .../images``; not blindly retried).

        :param dataset_id: the dataset id.
        :param file: image bytes or a binary file object (JPEG, PNG or WebP); exclusive with ``image_url``.
        :param image_url: public URL of the image; exclusive with ``file``.
        :param image_name: name stored with the image (reconcile on retry by listing images).
        :param increase_resolution: let the server upscale images from 256x256 (server default ``True``).
        :param content_moderation: moderate the image (server default ``False``; 422 when blocked).
        :param encoding: ``json`` (``file`` as base64 in a JSON body, as the spec declares) or ``multipart``
            (``multipart/form-data``); ``None`` = the connection extra ``upload_encoding`` (default ``json``).
            Which one Bria's server accepts cannot be verified offline: see ``docs/api-choices.md``.
        """
        did = inp.object_id(dataset_id, "dataset_id")
        if (file is None) == (image_url is None):
            raise BriaInputError("upload_image needs exactly one of file or image_url")
        if encoding is None:
            encoding = self.settings.upload_encoding  # type: ignore[attr-defined]
        if encoding not in ("json", "multipart"):
            raise BriaInputError(f"encoding must be 'json' or 'multipart', got {encoding!r}")
        if image_name is not None:
            inp.non_empty(image_name, "image_name")
        flags = {
            "increase_resolution": inp.optional_bool(increase_resolution, "increase_resolution"),
            "content_moderation": inp.optional_bool(content_moderation, "content_moderation"),
        }
        path = Paths.dataset_images(did)
        data: bytes | None = None
        fmt = "png"
        if file is not None:
            data, fmt = inp.image_bytes(file)
        url = inp.http_url(image_url, "image_url") if image_url is not None else None
        if encoding == "json":
            body = inp.compact(image_url=url, image_name=image_name, **flags)
            # The image as base64 under "file", first, spliced in without a pass of the JSON encoder over it.
            payload = inp.json_with_base64("file", data, body) if data is not None else body
            return as_dict(self.request("POST", path, json=payload))
        form = {k: _flag(v) for k, v in flags.items() if v is not None}
        if image_name is not None:
            form["image_name"] = image_name
        if url is not None:
            form["image_url"] = url
        files = None
        if data is not None:
            files = {"file": (image_name or f"image.{'jpg' if fmt == 'jpeg' else fmt}", data, _MIME[fmt])}
        else:
            # multipart/form-data even without a file part: send the URL as a form field.
            files = {"image_url": (None, url)}
            form.pop("image_url", None)
        return as_dict(self.request("POST", path, data=form or None, files=files))

    def list_images(self, dataset_id: int | str) -> list[dict[str, Any]]:
        """List a dataset's images.

        :param dataset_id: the dataset id.
        """
        return as_list(self.request("GET", Paths.dataset_images(inp.object_id(dataset_id, "dataset_id"))))

    def get_image(self, dataset_id: int | str, image_id: int | str) -> dict[str, Any]:
        """Get one image.

        :param dataset_id: the dataset id.
        :param image_id: the image id.
        """
        path = Paths.dataset_image(inp.object_id(dataset_id, "dataset_id"), inp.object_id(image_id, "image_id"))
        return as_dict(self.request("GET", path))

    def update_image_caption(
        self, dataset_id: int | str, image_id: int | str, caption: str | Mapping[str, Any]
    ) -> dict[str, Any]:
        """Set an image's caption (``caption_source`` becomes ``manual``; ``PUT``, idempotent).

        :param dataset_id: the dataset id.
        :param image_id: the image id.
        :param caption: the caption: plain text (legacy) or a JSON string (FIBO; a dict is serialised).
        """
        path = Paths.dataset_image(inp.object_id(dataset_id, "dataset_id"), inp.object_id(image_id, "image_id"))
        if isinstance(caption, Mapping):
            text = inp.json_string(caption, "caption")
        else:
            text = inp.non_empty(caption, "caption")
        return as_dict(self.request("PUT", path, json={"caption": text}))

    def regenerate_image_caption(self, dataset_id: int | str, image_id: int | str) -> dict[str, Any]:
        """Regenerate one image's caption automatically (``PUT`` with ``regenerate_caption: true``).

        :param dataset_id: the dataset id.
        :param image_id: the image id.
        """
        path = Paths.dataset_image(inp.object_id(dataset_id, "dataset_id"), inp.object_id(image_id, "image_id"))
        return as_dict(self.request("PUT", path, json={"regenerate_caption": True}))

    def delete_image(self, dataset_id: int | str, image_id: int | str) -> None:
        """Delete an image from a draft dataset.

        :param dataset_id: the dataset id.
        :param image_id: the image id.
        """
        path = Paths.dataset_image(inp.object_id(dataset_id, "dataset_id"), inp.object_id(image_id, "image_id"))
        self.request("DELETE", path)

    def regenerate_all_captions(self, dataset_id: int | str) -> dict[str, Any]:
        """Start regenerating every caption (``PUT .../images``, 202); poll ``captions_update_status``.

        :param dataset_id: the dataset id.
        :returns: the dataset (``captions_update_status`` usually ``in_progress``).
        """
        return as_dict(self.request("PUT", Paths.dataset_images(inp.object_id(dataset_id, "dataset_id"))))

    # ------------------------------------------------------------------ bulk upload (§4.15-4.16)

    def bulk_upload(
        self,
        dataset_id: int | str,
        zip_url: str,
        *,
        automatic_captioning: bool | None = None,
        content_moderation: bool | None = None,
    ) -> dict[str, Any]:
        """Start the (one-shot) ZIP bulk upload of an advanced dataset (``POST .../images/bulk-upload``).

        The endpoint reference says ``/images/bulk-upload``; Bria's overview says ``/images/bulk``. The
        documented spelling is tried first and the alias only on 404 (a 404 applies nothing, so this never
        starts two uploads).

        :param dataset_id: the dataset id.
        :param zip_url: public URL of the ZIP (<= 5 GB, <= 5000 images).
        :param automatic_captioning: legacy only; ``False`` requires a ``.txt`` caption per image. Not in the
            current spec: sent only when given.
        :param content_moderation: moderate images (server default ``False``).
        :returns: the server's acknowledgement (``{}`` when the 202 has no body).
        """
        did = inp.object_id(dataset_id, "dataset_id")
        body = inp.compact(
            zip_url=inp.http_url(zip_url, "zip_url"),
            automatic_captioning=inp.optional_bool(automatic_captioning, "automatic_captioning"),
            content_moderation=inp.optional_bool(content_moderation, "content_moderation"),
        )
        try:
            return as_dict(self.request("POST", Paths.bulk_upload(did), json=body))
        except BriaNotFoundError as first:
            try:
                return as_dict(self.request("POST", Paths.bulk_upload(did, alias=True), json=body))
            except BriaNotFoundError:
                raise first from None

    def get_bulk_upload_status(self, dataset_id: int | str) -> dict[str, Any]:
        """Get the bulk upload's ``status``, ``progress_percentage``, counts and ``failed_images``.

        :param dataset_id: the dataset id.
        """
        did = inp.object_id(dataset_id, "dataset_id")
        try:
            return as_dict(self.request("GET", Paths.bulk_upload_status(did)))
        except BriaNotFoundError as first:
            try:
                return as_dict(self.request("GET", f"{Paths.bulk_upload(did, alias=True)}/status"))
            except BriaNotFoundError:
                raise first from None
