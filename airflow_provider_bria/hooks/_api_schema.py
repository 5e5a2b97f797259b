"""The schema and caption helper endpoints (contract §5) as methods of
:class:`~airflow_provider_bria.hooks.bria.BriaHook`.

The three helper endpoints are POSTs that change nothing on the server, so they are flagged ``retry=True``
and retried like reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_provider_bria import contract
from airflow_provider_bria.contract import Paths
from airflow_provider_bria.exceptions import BriaAPIError, BriaInputError
from airflow_provider_bria.hooks import _inputs as inp
from airflow_provider_bria.hooks._base import HookSurface


def _text_field(body: Any, keys: tuple[str, ...], what: str) -> str:
    """Extract a string field from a helper response (flat, ``result``-wrapped, or a bare string).

    Objects are serialised back to the JSON string the API uses elsewhere.

    :param body: the decoded body.
    :param keys: candidate field names, in order of preference.
    :param what: the call, for the message.
    """
    if isinstance(body, str) and body.strip():
        return body
    candidates: list[Any] = []
    if isinstance(body, Mapping):
        candidates.append(body)
        if isinstance(body.get("result"), Mapping):
            candidates.append(body["result"])
    for source in candidates:
        for key in keys:
            value = source.get(key)
            if isinstance(value, Mapping | list):
                return json.dumps(value)
            if isinstance(value, str) and value.strip():
                return value
    raise BriaAPIError(f"{what}: the response has no {' / '.join(keys)} field")


class BriaSchemaApiMixin(HookSurface):
    """Visual schema, caption prefix and structured prompt helpers. Mixed into
    :class:`~airflow_provider_bria.hooks.bria.BriaHook`."""

    # ------------------------------------------------------------------ helpers (§5)

    def generate_visual_schema(self, images: list[str], *, content_moderation: bool | None = None) -> str:
        """Generate a FIBO visual schema from 5-10 sample images (read-only POST, retried).

        :param images: 5-10 images as public URLs or base64 (data URIs, bytes and binary files also accepted).
        :param content_moderation: moderate the images (server default ``False``).
        :returns: the ``visual_schema`` JSON string, to be saved with :meth:`update_dataset`.
        """
        refs = inp.image_refs(images, "images")
        contract.validate_image_count(
            len(refs),
            minimum=contract.VISUAL_SCHEMA_MIN_IMAGES,
            maximum=contract.VISUAL_SCHEMA_MAX_IMAGES,
            what="generate_visual_schema",
        )
        body = inp.compact(
            images=refs, content_moderation=inp.optional_bool(content_moderation, "content_moderation")
        )
        resp = self.request("POST", Paths.GENERATE_VISUAL_SCHEMA, json=body, retry=True)
        return _text_field(resp, ("visual_schema",), "generate_visual_schema")

    def generate_prefix(
        self,
        *,
        ip_type: str | contract.IpType,
        ip_medium: str | contract.IpMedium,
        images: list[str] | None = None,
        image_urls: list[str] | None = None,
        ip_name: str | None = None,
        content_moderation: bool | None = None,
    ) -> str:
        """Generate a legacy caption prefix from 1-6 images (read-only POST, retried).

        The response field is undocumented: ``prefix``, ``caption_prefix``, ``generation_prefix`` (flat or
        under ``result``) and a bare string are all accepted.

        :param ip_type: ``stylized_scene``, ``defined_character`` or ``object_variants``.
        :param ip_medium: ``photography`` or ``illustration``.
        :param images: 1-6 images as base64 (bytes/files accepted); exclusive with ``image_urls``.
        :param image_urls: 1-6 public image URLs; exclusive with ``images``.
        :param ip_name: the character name, required for ``defined_character``.
        :param content_moderation: moderate the images.
        :returns: the caption prefix.
        """
        itype = contract.parse_enum(contract.IpType, ip_type, "ip_type")
        medium = contract.parse_enum(contract.IpMedium, ip_medium, "ip_medium")
        if itype not in contract.PREFIX_IP_TYPES:
            allowed = ", ".join(sorted(t.value for t in contract.PREFIX_IP_TYPES))
            raise BriaInputError(f"generate_prefix supports ip_type {allowed}; got {itype.value!r}")
        if (images is None) == (image_urls is None):
            raise BriaInputError("generate_prefix needs exactly one of images (base64) or image_urls")
        if itype in contract.IP_NAME_REQUIRED_TYPES and not (ip_name and str(ip_name).strip()):
            raise BriaInputError(f"ip_name is required for ip_type {itype.value!r}")
        if images is not None:
            refs = inp.image_refs(images, "images")
        else:
            if image_urls is None or isinstance(image_urls, str):
                raise BriaInputError("image_urls must be a list of URLs")
            refs = [inp.http_url(u, f"image_urls[{i}]") for i, u in enumerate(image_urls)]
        contract.validate_image_count(
            len(refs), minimum=contract.PREFIX_MIN_IMAGES, maximum=contract.PREFIX_MAX_IMAGES, what="generate_prefix"
        )
        body = inp.compact(
            images=refs if images is not None else None,
            image_urls=refs if image_urls is not None else None,
            ip_type=itype,
            ip_medium=medium,
            ip_name=ip_name,
            content_moderation=inp.optional_bool(content_moderation, "content_moderation"),
        )
        resp = self.request("POST", Paths.GENERATE_PREFIX, json=body, retry=True)
        return _text_field(resp, ("prefix", "caption_prefix", "generation_prefix"), "generate_prefix")

    def refine_structured_prompt(
        self,
        dataset_id: int | str,
        structured_prompt: str | Mapping[str, Any],
        instruction: str,
        *,
        context_images: list[str] | None = None,
    ) -> str:
        """Refine a visual schema or caption JSON with a natural-language instruction (read-only POST, retried).

        The result is not saved: pass it to :meth:`update_dataset` or :meth:`update_image_caption`.

        :param dataset_id: a draft dataset of the caller (ownership check).
        :param structured_prompt: the JSON string to refine (a dict is serialised).
        :param instruction: what to change, in plain language.
        :param context_images: optional images (URLs or base64) for context.
        :returns: the refined ``structured_prompt`` JSON string.
        """
        body = inp.compact(
            dataset_id=inp.object_id(dataset_id, "dataset_id"),
            structured_prompt=inp.json_string(structured_prompt, "structured_prompt"),
            instruction=inp.non_empty(instruction, "instruction"),
            context_images=inp.image_refs(context_images, "context_images") if context_images is not None else None,
        )
        resp = self.request("POST", Paths.REFINE_STRUCTURED_PROMPT, json=body, retry=True)
        return _text_field(resp, ("structured_prompt",), "refine_structured_prompt")
