"""Dataset images and the ZIP bulk upload (contract §4.9-4.16) as methods of
:class:`~airflow_provider_bria.hooks.bria.BriaHook`.

Every method validates its input before sending anything. Reads, updates and deletes are retried by the
hook's policy; uploads (POST) are not blindly retried: callers reconcile by listing the dataset's images.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO

from airflow_provider_bria.contract import Paths
from airflow_provider_bria.exceptions import BriaInputError, BriaNotFoundError
from airflow_provider_bria.hooks import _inputs as inp
from airflow_provider_bria.hooks._base import HookSurface, as_dict, as_result, as_results, flag
from airflow_provider_bria.results import BulkUploadStatusResult, ImageResult

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def _multipart(
    data: bytes | None, fmt: str, url: str | None, image_name: str | None, flags: dict[str, bool | None]
) -> tuple[dict[str, str], dict[str, tuple[Any, ...]]]:
    """Return ``(form fields, files)`` of a ``multipart/form-data`` image upload.

    :param data: the image bytes, or ``None`` for a URL upload.
    :param fmt: the image format (``png``, ``jpeg``, ``webp``).
    :param url: the image URL, or ``None`` for a bytes upload.
    :param image_name: the name stored with the image.
    :param flags: the optional boolean fields.
    """
    form = {k: flag(v) for k, v in flags.items() if v is not None}
    if image_name is not None:
        form["image_name"] = image_name
    if data is not None:
        name = image_name or f"image.{'jpg' if fmt == 'jpeg' else fmt}"
        return form, {"file": (name, data, _MIME[fmt])}
    # multipart/form-data even without a file part: send the URL as a file-less part.
    return form, {"image_url": (None, url)}


class BriaImageApiMixin(HookSurface):
    """Image and bulk-upload operations. Mixed into :class:`~airflow_provider_bria.hooks.bria.BriaHook`."""

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
            encoding = self.settings.upload_encoding
        if encoding not in ("json", "multipart"):
            raise BriaInputError(f"encoding must be 'json' or 'multipart', got {encoding!r}")
        if image_name is not None:
            inp.non_empty(image_name, "image_name")
        flags = {
            "increase_resolution": inp.optional_bool(increase_resolution, "increase_resolution"),
            "content_moderation": inp.optional_bool(content_moderation, "content_moderation"),
        }
        data, fmt = inp.image_bytes(file) if file is not None else (None, "png")
        url = inp.http_url(image_url, "image_url") if image_url is not None else None
        path = Paths.dataset_images(did)
        if encoding == "json":
            body = inp.compact(image_url=url, image_name=image_name, **flags)
            # The image as base64 under "file", first, spliced in without a pass of the JSON encoder over it.
            payload = inp.json_with_base64("file", data, body) if data is not None else body
            return as_dict(self.request("POST", path, json=payload))
        form, files = _multipart(data, fmt, url, image_name, flags)
        return as_dict(self.request("POST", path, data=form or None, files=files))

    def list_images(self, dataset_id: int | str) -> list[ImageResult]:
        """List a dataset's images.

        :param dataset_id: the dataset id.
        """
        path = Paths.dataset_images(inp.object_id(dataset_id, "dataset_id"))
        return as_results(self.request("GET", path), ImageResult)

    def get_image(self, dataset_id: int | str, image_id: int | str) -> ImageResult:
        """Get one image.

        :param dataset_id: the dataset id.
        :param image_id: the image id.
        """
        path = Paths.dataset_image(inp.object_id(dataset_id, "dataset_id"), inp.object_id(image_id, "image_id"))
        return as_result(self.request("GET", path), ImageResult)

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

    def get_bulk_upload_status(self, dataset_id: int | str) -> BulkUploadStatusResult:
        """Get the bulk upload's ``status``, ``progress_percentage``, counts and ``failed_images``.

        :param dataset_id: the dataset id.
        """
        did = inp.object_id(dataset_id, "dataset_id")
        try:
            return as_result(self.request("GET", Paths.bulk_upload_status(did)), BulkUploadStatusResult)
        except BriaNotFoundError as first:
            try:
                alias = f"{Paths.bulk_upload(did, alias=True)}/status"
                return as_result(self.request("GET", alias), BulkUploadStatusResult)
            except BriaNotFoundError:
                raise first from None
