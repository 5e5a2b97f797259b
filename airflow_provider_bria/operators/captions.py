"""Operators for visual schemas, caption prefixes, structured-prompt refinement and dataset captions."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from airflow_provider_bria.contract import (
    PREFIX_IP_TYPES,
    PREFIX_MAX_IMAGES,
    PREFIX_MIN_IMAGES,
    VISUAL_SCHEMA_MAX_IMAGES,
    VISUAL_SCHEMA_MIN_IMAGES,
    CaptionsUpdateStatus,
    IpMedium,
    IpType,
    TrainingFamily,
    check_ip_words,
    parse_enum,
    validate_image_count,
    word_count,
)
from airflow_provider_bria.exceptions import BriaCaptionsTimeoutError, BriaConflictError, BriaInputError
from airflow_provider_bria.links.bria import BriaDatasetLink, BriaProjectLink, push_console_xcoms
from airflow_provider_bria.operators._reconcile import coerce_id, conflict_from, is_templated
from airflow_provider_bria.operators.base import BriaBaseOperator, Number
from airflow_provider_bria.operators.dataset import (
    dataset_family,
    dataset_project_id,
    images_count,
    is_completed,
    json_text,
    require_draft,
    same_json,
)

#: Most context images sent to refine_structured_prompt (the API documents no limit; this keeps requests sane).
MAX_CONTEXT_IMAGES = 10


_FAMILY_LABEL = {TrainingFamily.FIBO: "FIBO", TrainingFamily.LEGACY: "legacy"}


def _read_target_dataset(operator: BriaBaseOperator, context: Any, dataset_id: int,
                         expected_family: TrainingFamily, field: str) -> dict[str, Any]:
    """Read the dataset a helper's result goes to, push its console XComs and check its training family.

    :param operator: the running operator (its hook is used).
    :param context: the task context.
    :param dataset_id: the target dataset.
    :param expected_family: the family ``field`` applies to (visual schemas: FIBO; caption prefixes: legacy).
    :param field: the dataset field being set, for the message.
    :raises BriaInputError: the dataset belongs to the other family.
    """
    from airflow_provider_bria.results import loose

    hook = operator.hook
    dataset = loose(hook.get_dataset(dataset_id, max_images=1))
    push_console_xcoms(context, hook.console_url, project_id=dataset_project_id(dataset), dataset_id=dataset_id)
    if dataset_family(dataset) is not expected_family:
        raise BriaInputError(
            f"{field} applies to {_FAMILY_LABEL[expected_family]} datasets only; dataset {dataset_id} is "
            f"{dataset.get('training_version')!r}"
        )
    return dataset


def _apply_to_dataset(
    operator: BriaBaseOperator,
    context: Any,
    dataset_id: int,
    *,
    field: str,
    value: str,
    expected_family: TrainingFamily,
) -> bool:
    """PUT ``field`` onto a draft dataset unless it already holds ``value``; return whether a call was made."""
    hook = operator.hook
    dataset = _read_target_dataset(operator, context, dataset_id, expected_family, field)
    if same_json(dataset.get(field), value) if field == "visual_schema" else dataset.get(field) == value:
        operator.log.info("Dataset %s already has this %s; nothing to send", dataset_id, field)
        return False
    require_draft(dataset, f"change its {field}")
    try:
        hook.update_dataset(dataset_id, **{field: value})
    except BriaConflictError as err:
        raise conflict_from(err, f"Dataset {dataset_id} refused the new {field}") from err
    operator.log.info("Set the %s of dataset %s", field, dataset_id)
    if images_count(dataset) > 0:
        operator.log.warning(
            "Dataset %s already has %d image(s) captioned before this %s; run BriaRegenerateCaptionsOperator "
            "to recaption them", dataset_id, images_count(dataset), field,
        )
    return True


def _check_target_dataset(operator: BriaBaseOperator, context: Any, dataset_id: int,
                          expected_family: TrainingFamily, field: str) -> str | None:
    """Read the dataset an ``apply_to_dataset`` run will change, before spending a helper call on it.

    :return: the dataset's current value of ``field`` when the dataset is completed and already has one (the
        run then keeps it: a completed dataset is frozen), else ``None`` (go on and generate).
    """
    dataset = _read_target_dataset(operator, context, dataset_id, expected_family, field)
    if is_completed(dataset) and dataset.get(field):
        operator.log.warning(
            "Dataset %s is completed (frozen) and already has a %s: keeping it, nothing generated. Clone the "
            "dataset (BriaCloneDatasetOperator) to use a new one", dataset_id, field,
        )
        return str(dataset[field])
    require_draft(dataset, f"set its {field}")
    return None


class BriaGenerateVisualSchemaOperator(BriaBaseOperator):
    """Generate a FIBO visual schema from 5-10 sample images, optionally applying it to a dataset.

    Images name sources as the upload operator does: files, folders, globs, object-storage URIs or prefixes
    (``s3://bucket/samples/``, read through Airflow's ObjectStoragePath), ``ObjectStoragePath`` objects, a list
    of them or an XCom list; they pass the upload's quality gate (skipped files are logged as a warning) and
    are sent base64-encoded. ``http(s)`` URLs are sent as they are. A folder with more than 10 valid images
    gives its first 10 (with a warning). With ``apply_to_dataset=True`` the target dataset is checked first
    (FIBO, draft) and the schema is then ``PUT`` onto it, unless it already holds the same schema. If the
    dataset is already *completed* with a schema (a re-run of a pipeline whose dataset was finished), nothing
    is generated: the dataset's schema is returned and a warning logged, since a completed dataset is frozen.

    Returns the visual schema (a JSON string).

    :param images: 5-10 images: files, folders, globs, object-storage URIs/prefixes or URLs, or a list of them
        (templated; a list, or a string holding a list).
    :param dataset_id: dataset to apply the schema to (templated); needed with ``apply_to_dataset``.
    :param apply_to_dataset: ``PUT`` the schema onto ``dataset_id`` in the same task (default ``False``).
    :param content_moderation: ask Bria to moderate the images (default: API default, off).
    """

    template_fields: Sequence[str] = (*BriaBaseOperator.template_fields, "images", "dataset_id")
    operator_extra_links = (BriaProjectLink(), BriaDatasetLink())

    def __init__(
        self,
        *,
        images: Sequence[Any] | str,
        dataset_id: int | str | None = None,
        apply_to_dataset: bool = False,
        content_moderation: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.images = images
        self.dataset_id = dataset_id
        self.apply_to_dataset = apply_to_dataset
        self.content_moderation = content_moderation
        if apply_to_dataset and dataset_id is None:
            raise BriaInputError("apply_to_dataset=True needs dataset_id")

    def execute(self, context: Any) -> str:
        """Generate the schema (and apply it); return it."""
        from airflow_provider_bria.operators._image_inputs import gate_images

        dataset_id = coerce_id(self.dataset_id, "dataset_id") if self.apply_to_dataset else None
        payload = gate_images(
            self.images, "images", minimum=VISUAL_SCHEMA_MIN_IMAGES, maximum=VISUAL_SCHEMA_MAX_IMAGES,
            what="generate_visual_schema", log=self.log,
        )
        if dataset_id is not None:
            kept = _check_target_dataset(self, context, dataset_id, TrainingFamily.FIBO, "visual_schema")
            if kept is not None:
                return kept
        self.log.info("Generating a visual schema from %d image(s)", len(payload))
        schema = self.hook.generate_visual_schema(payload, content_moderation=self.content_moderation)
        schema = json_text(schema, "visual_schema returned by the API")
        self.log.info("Visual schema generated (%d characters)", len(schema))
        if dataset_id is not None:
            _apply_to_dataset(self, context, dataset_id, field="visual_schema", value=schema,
                              expected_family=TrainingFamily.FIBO)
        return schema


class BriaGenerateCaptionPrefixOperator(BriaBaseOperator):
    """Generate a legacy caption prefix from 1-6 images, optionally applying it to a legacy dataset.

    Give either ``images`` (paths, object-storage URIs or URLs; if all are URLs they are sent as
    ``image_urls``, else every image is read and sent base64) or ``image_urls``. Bria advises 6 images when
    available. ``ip_type`` must be ``stylized_scene``, ``defined_character`` or ``object_variants``; ``ip_name``
    is used for ``defined_character``. With ``apply_to_dataset=True`` the prefix is ``PUT`` onto the (draft,
    legacy) dataset unless it already holds it; a completed dataset that has a prefix keeps it (returned,
    nothing generated).

    Returns the prefix string.

    :param ip_type: the project's ``ip_type`` (templated).
    :param ip_medium: ``photography`` or ``illustration`` (templated).
    :param images: 1-6 images: files, folders, globs, object-storage URIs/prefixes, or a list of them; or all
        URLs (templated).
    :param image_urls: 1-6 public URLs, instead of ``images`` (templated).
    :param ip_name: character name (``defined_character`` only; 1-3 words) (templated).
    :param dataset_id: dataset to apply the prefix to (templated).
    :param apply_to_dataset: ``PUT`` the prefix onto ``dataset_id`` (default ``False``).
    :param content_moderation: ask Bria to moderate the images.
    """

    template_fields: Sequence[str] = (
        *BriaBaseOperator.template_fields, "ip_type", "ip_medium", "images", "image_urls", "ip_name", "dataset_id",
    )
    operator_extra_links = (BriaProjectLink(), BriaDatasetLink())

    def __init__(
        self,
        *,
        ip_type: str | IpType,
        ip_medium: str | IpMedium,
        images: Sequence[Any] | str | None = None,
        image_urls: Sequence[str] | str | None = None,
        ip_name: str | None = None,
        dataset_id: int | str | None = None,
        apply_to_dataset: bool = False,
        content_moderation: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ip_type = ip_type.value if isinstance(ip_type, IpType) else ip_type
        self.ip_medium = ip_medium.value if isinstance(ip_medium, IpMedium) else ip_medium
        self.images = images
        self.image_urls = image_urls
        self.ip_name = ip_name
        self.dataset_id = dataset_id
        self.apply_to_dataset = apply_to_dataset
        self.content_moderation = content_moderation
        if (images is None) == (image_urls is None):
            raise BriaInputError("Give exactly one of images or image_urls")
        if apply_to_dataset and dataset_id is None:
            raise BriaInputError("apply_to_dataset=True needs dataset_id")
        if not is_templated(self.ip_type):
            self._check_ip_type()

    def _check_ip_type(self) -> IpType:
        itype: IpType = parse_enum(IpType, self.ip_type, "ip_type")
        if itype not in PREFIX_IP_TYPES:
            allowed = ", ".join(sorted(t.value for t in PREFIX_IP_TYPES))
            raise BriaInputError(f"generate_prefix supports ip_type {allowed}; got {itype.value!r}")
        return itype

    def execute(self, context: Any) -> str:
        """Generate the prefix (and apply it); return it."""
        from airflow_provider_bria.operators._image_inputs import as_image_list, gate_images, is_url

        itype = self._check_ip_type()
        medium = parse_enum(IpMedium, self.ip_medium, "ip_medium")
        ip_name = self.ip_name if itype is IpType.DEFINED_CHARACTER else None
        if self.ip_name and itype is not IpType.DEFINED_CHARACTER:
            self.log.warning("ip_name is only used for ip_type 'defined_character'; ignoring it")
        if ip_name is not None and word_count(ip_name) < 1:
            raise BriaInputError(f"ip_name must not be empty, got {ip_name!r}")
        check_ip_words(ip_name, None, strict=False)
        dataset_id = coerce_id(self.dataset_id, "dataset_id") if self.apply_to_dataset else None
        kwargs: dict[str, Any] = {}
        if self.image_urls is not None:
            urls = as_image_list(self.image_urls, "image_urls")
            self._count(urls)
            bad = [u for u in urls if not is_url(u)]
            if bad:
                raise BriaInputError(f"image_urls must be http(s) URLs; got {bad[0]!r} (use images for files)")
            kwargs["image_urls"] = [str(u).strip() for u in urls]
        else:
            items = as_image_list(self.images, "images")
            if items and all(is_url(i) for i in items):
                self._count(items)
                kwargs["image_urls"] = [str(u).strip() for u in items]
            elif any(is_url(i) for i in items):
                raise BriaInputError("generate_prefix takes either all URLs or all files; images mixes both")
            else:
                kwargs["images"] = gate_images(items, "images", minimum=PREFIX_MIN_IMAGES, maximum=PREFIX_MAX_IMAGES,
                                               what="generate_prefix", log=self.log)
        if dataset_id is not None:
            kept = _check_target_dataset(self, context, dataset_id, TrainingFamily.LEGACY, "caption_prefix")
            if kept is not None:
                return kept
        self.log.info("Generating a caption prefix (%s, %s) from %d image(s)", itype.value, medium.value,
                      len(kwargs.get("images") or kwargs.get("image_urls") or []))
        prefix = self.hook.generate_prefix(
            ip_type=itype.value, ip_medium=medium.value, ip_name=ip_name,
            content_moderation=self.content_moderation, **kwargs,
        )
        self.log.info("Caption prefix: %r", prefix)
        if dataset_id is not None:
            _apply_to_dataset(self, context, dataset_id, field="caption_prefix", value=str(prefix),
                              expected_family=TrainingFamily.LEGACY)
        return str(prefix)

    @staticmethod
    def _count(items: list[Any]) -> None:
        validate_image_count(len(items), minimum=PREFIX_MIN_IMAGES, maximum=PREFIX_MAX_IMAGES, what="generate_prefix")


class BriaRefineStructuredPromptOperator(BriaBaseOperator):
    """Refine a visual schema or an image caption (a structured prompt) with a natural-language instruction.

    Read-only on Bria's side: the refined JSON is returned, not saved (apply it with
    ``BriaUpdateDatasetOperator(visual_schema=...)`` or ``BriaUpdateImageCaptionOperator(caption=...)``).
    The dataset must be a draft (Bria's ownership check).

    Returns the refined structured prompt (a JSON string).

    :param dataset_id: the dataset the prompt belongs to (templated).
    :param structured_prompt: the schema or caption, as a dict or a JSON string (templated).
    :param instruction: what to change, in plain words (templated).
    :param context_images: optional images for context: paths, object-storage URIs or URLs (templated).
    """

    template_fields: Sequence[str] = (
        *BriaBaseOperator.template_fields, "dataset_id", "structured_prompt", "instruction", "context_images",
    )
    template_fields_renderers = {"structured_prompt": "json"}

    def __init__(
        self,
        *,
        dataset_id: int | str,
        structured_prompt: str | dict[str, Any],
        instruction: str,
        context_images: Sequence[Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id
        self.structured_prompt = structured_prompt
        self.instruction = instruction
        self.context_images = context_images

    def execute(self, context: Any) -> str:
        """Refine the prompt; return the refined JSON string."""
        from airflow_provider_bria.operators._image_inputs import as_image_list, encode_images

        dataset_id = coerce_id(self.dataset_id, "dataset_id")
        prompt = json_text(self.structured_prompt, "structured_prompt")
        instruction = str(self.instruction or "").strip()
        if not instruction:
            raise BriaInputError("instruction is required and must not be empty")
        images = None
        if self.context_images is not None and as_image_list(self.context_images, "context_images"):
            images = encode_images(self.context_images, minimum=1, maximum=MAX_CONTEXT_IMAGES,
                                   what="refine_structured_prompt context_images", field="context_images")
        self.log.info("Refining a structured prompt for dataset %s (%d context image(s))", dataset_id,
                      len(images or []))
        refined = self.hook.refine_structured_prompt(dataset_id, prompt, instruction, context_images=images)
        return json_text(refined, "structured_prompt returned by the API")


class BriaRegenerateCaptionsOperator(BriaBaseOperator):
    """Regenerate every caption of a draft dataset and wait until ``captions_update_status`` is ``completed``.

    Needed after changing the visual schema or caption prefix, or after uploading images before the schema
    existed. Captioning takes minutes, so the operator polls (no deferral). On retry it does not restart a
    regeneration that is still ``in_progress``: it only waits for it. A dataset without images needs no
    captions and returns at once. A FIBO dataset needs a visual schema first.

    Returns ``{"dataset_id", "captions_update_status", "images_count", "regenerated": <bool>}``.

    :param dataset_id: the dataset id (templated).
    :param wait: wait for completion (default ``True``).
    :param poll_interval: seconds between status reads (default 10; templated).
    :param timeout: seconds to wait before :class:`BriaCaptionsTimeoutError` (default 3600; templated). Status
        reads failing with a transient or ambiguous error (429, 5xx, timeouts; after the hook's own retries) are
        tolerated up to :data:`~airflow_provider_bria.waiting.policy.DEFAULT_MAX_CONSECUTIVE_FAILURES` (5) in a row.
    """

    template_fields: Sequence[str] = (*BriaBaseOperator.template_fields, "dataset_id")
    template_numbers: ClassVar[Mapping[str, Number]] = {
        "poll_interval": Number(float, 0, exclusive_minimum=True),
        "timeout": Number(float, 0, exclusive_minimum=True),
    }
    operator_extra_links = (BriaProjectLink(), BriaDatasetLink())

    def __init__(
        self,
        *,
        dataset_id: int | str,
        wait: bool = True,
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id
        self.wait = wait
        self.poll_interval = self.number_arg("poll_interval", poll_interval)
        self.timeout = self.number_arg("timeout", timeout)

    def execute(self, context: Any) -> dict[str, Any]:
        """Start the regeneration (unless running) and wait for it."""
        dataset_id = coerce_id(self.dataset_id, "dataset_id")
        hook = self.hook
        dataset = hook.get_dataset(dataset_id, max_images=1)
        push_console_xcoms(context, hook.console_url, project_id=dataset_project_id(dataset), dataset_id=dataset_id)
        count = images_count(dataset)
        status = str(dataset.get("captions_update_status") or "")
        if count == 0:
            self.log.info("Dataset %s has no images; no captions to regenerate", dataset_id)
            return self._summary(dataset_id, status, count, False)
        regenerated = False
        if status == CaptionsUpdateStatus.IN_PROGRESS.value:
            self.log.info("Captions of dataset %s are already being regenerated; waiting for them", dataset_id)
        else:
            require_draft(dataset, "regenerate its captions")
            if dataset_family(dataset) is TrainingFamily.FIBO and not dataset.get("visual_schema"):
                raise BriaInputError(
                    f"FIBO dataset {dataset_id} has no visual_schema; set one (BriaGenerateVisualSchemaOperator "
                    "with apply_to_dataset=True) before regenerating captions"
                )
            try:
                answer = hook.regenerate_all_captions(dataset_id)
            except BriaConflictError as err:
                raise conflict_from(err, f"Dataset {dataset_id} refused caption regeneration") from err
            regenerated = True
            status = str((answer or {}).get("captions_update_status") or CaptionsUpdateStatus.IN_PROGRESS.value)
            self.log.info("Regenerating the captions of %d image(s) in dataset %s", count, dataset_id)
        if self.wait and status != CaptionsUpdateStatus.COMPLETED.value:
            status = self._wait(dataset_id)
        return self._summary(dataset_id, status, count, regenerated)

    def _wait(self, dataset_id: int) -> str:
        from airflow_provider_bria.waiting.policy import PollFailed, PollPolicy, PollTimeout
        from airflow_provider_bria.waiting.sync import wait_sync

        last: dict[str, str] = {}

        def finished(dataset: Mapping[str, Any]) -> bool:
            status = last["status"] = str(dataset.get("captions_update_status") or "")
            if status == CaptionsUpdateStatus.COMPLETED.value:
                self.log.info("Captions of dataset %s are completed", dataset_id)
                return True
            self.log.info("Captions of dataset %s: %s; checking again in %gs", dataset_id, status, self.poll_interval)
            return False

        policy = PollPolicy.within(float(self.poll_interval), float(self.timeout), time.monotonic())
        try:
            wait_sync(policy, lambda: self.hook.get_dataset(dataset_id, max_images=1), finished,
                      what=f"the captions of dataset {dataset_id}", log=self.log)
        except PollTimeout:
            raise BriaCaptionsTimeoutError(
                f"Captions of dataset {dataset_id} still {last.get('status')!r} after {self.timeout:g}s; they may "
                "still finish: a retry waits for the running regeneration instead of starting another"
            ) from None
        except PollFailed as err:
            raise err.error from None
        return last["status"]

    @staticmethod
    def _summary(dataset_id: int, status: str, count: int, regenerated: bool) -> dict[str, Any]:
        return {"dataset_id": dataset_id, "captions_update_status": status or None, "images_count": count,
                "regenerated": regenerated}


class BriaUpdateImageCaptionOperator(BriaBaseOperator):
    """Set one image's caption by hand, or have Bria regenerate it.

    Give exactly one of ``caption`` and ``regenerate=True``. On FIBO datasets the caption is a JSON document
    (a dict, or a string holding JSON; Bria validates and repairs it); on legacy datasets plain text. The
    dataset must be a draft. Setting the same caption again is a no-op (checked by reading the image), so
    retries are safe.

    Returns ``{"dataset_id", "image_id", "caption_source", "caption"}``.

    :param dataset_id: the dataset id (templated).
    :param image_id: the image id (templated).
    :param caption: the new caption (templated).
    :param regenerate: ask Bria for a fresh automatic caption instead (default ``False``).
    """

    template_fields: Sequence[str] = (*BriaBaseOperator.template_fields, "dataset_id", "image_id", "caption")
    template_fields_renderers = {"caption": "json"}

    def __init__(
        self,
        *,
        dataset_id: int | str,
        image_id: int | str,
        caption: str | dict[str, Any] | None = None,
        regenerate: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id
        self.image_id = image_id
        self.caption = caption
        self.regenerate = regenerate
        if (caption is None) == (not regenerate):
            raise BriaInputError("Give exactly one of caption and regenerate=True")

    def execute(self, context: Any) -> dict[str, Any]:
        """Update the caption; return the image's new caption."""
        dataset_id = coerce_id(self.dataset_id, "dataset_id")
        image_id = coerce_id(self.image_id, "image_id")
        hook = self.hook
        dataset = hook.get_dataset(dataset_id, max_images=1)
        fibo = dataset_family(dataset) is TrainingFamily.FIBO
        caption: str | None = None
        if not self.regenerate:
            if fibo:
                caption = json_text(self.caption, "caption")
            else:
                if isinstance(self.caption, Mapping):
                    raise BriaInputError(f"Dataset {dataset_id} is legacy: its captions are plain text, not JSON")
                caption = str(self.caption or "").strip()
                if not caption:
                    raise BriaInputError("caption must not be empty")
        require_draft(dataset, "edit captions")
        image = hook.get_image(dataset_id, image_id)
        if caption is not None and (same_json(image.get("caption"), caption) if fibo
                                    else image.get("caption") == caption):
            self.log.info("Image %s already has this caption; nothing to send", image_id)
            return self._summary(dataset_id, image_id, image)
        try:
            if caption is None:  # regenerate=True (the constructor allows exactly one of the two)
                result = hook.regenerate_image_caption(dataset_id, image_id)
            else:
                result = hook.update_image_caption(dataset_id, image_id, caption)
        except BriaConflictError as err:
            raise conflict_from(err, f"Dataset {dataset_id} refused the caption change of image {image_id}") from err
        self.log.info("Image %s of dataset %s: caption %s", image_id, dataset_id,
                      "regenerated" if self.regenerate else "updated")
        return self._summary(dataset_id, image_id, {**image, **(result or {})})

    @staticmethod
    def _summary(dataset_id: int, image_id: int, image: Mapping[str, Any]) -> dict[str, Any]:
        return {"dataset_id": dataset_id, "image_id": image_id, "caption_source": image.get("caption_source"),
                "caption": image.get("caption")}
