"""Generation operators: v2 tailored images (many prompts), structured prompts, image-to-video, legacy v1 images.

Outputs land in any Airflow object store under deterministic names, so a retried or re-run task skips what
already exists; see ``docs/generation.md`` for the full behaviour (rate limits, retries, deferral).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_bria import contract
from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators._generation_base import GenerationBase, default_deferrable, positive
from airflow_provider_bria.operators._generation_files import OutputsMixin
from airflow_provider_bria.operators._output_limits import DEFAULT_MAX_VIDEO_BYTES
from airflow_provider_bria.operators.base import Number

if TYPE_CHECKING:
    from airflow_provider_bria.operators._generation_engine import JobRunner
    from airflow_provider_bria.operators._generation_failures import Failure
    from airflow_provider_bria.operators._generation_plan import Batch, WorkItem
    from airflow_provider_bria.operators._outputs import OutputFolder
    from airflow_provider_bria.responses import V2Response


def image_file_name(image: Any) -> str | None:
    """The file name of a video's source image (path, URI or URL), or ``None`` for base64 and data URIs.

    :param image: the ``image`` argument as rendered.
    """
    from airflow_provider_bria.operators._generation_inputs import _bare_base64

    text = str(image or "").strip()
    if not text or text.startswith("data:") or len(text) > 4096 or _bare_base64(text) is not None:
        return None
    name = text.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return name or None


__all__ = [
    "BriaGenerateImagesOperator",
    "BriaGenerateLegacyImagesOperator",
    "BriaGenerateStructuredPromptOperator",
    "BriaGenerateVideoOperator",
    "read_prompts_file",
]


def read_prompts_file(location: str, *, conn_id: str | None = None) -> list[str]:
    """Read a prompts file from a local path or any ``ObjectStoragePath`` URI (the operators' ``prompts_file`` format).

    One prompt per line (blank and ``#`` lines skipped) or a JSON list of strings, for DAGs that plan batches
    themselves. Defined here (the planning module is imported on the first call, not when a DAG file that imports
    this function is parsed).

    :param location: the path or URI.
    :param conn_id: Airflow connection of the store, when not in the URI.
    :return: the prompts, in file order (empty for a file with no prompt).
    :raises BriaInputError: the file is missing, not UTF-8, or a malformed JSON list.
    """
    from airflow_provider_bria.operators import _generation_plan

    return _generation_plan.read_prompts_file(location, conn_id=conn_id)


class BriaGenerateImagesOperator(OutputsMixin, GenerationBase):
    """Generate images with a FIBO tailored model (v2) for one or many prompts, into an object-store folder.

    Each image is named ``<slug(prompt)[:40]>-<sha12>.png`` from (model, prompt, structured prompt, seed,
    index, explicitly set parameters), with a ``.json`` sidecar; existing outputs are never generated again.
    Returns one ``{uri, seed, structured_prompt, request_id, prompt, index, existing}`` per image (bytes never go
    to XCom). Item failures (422 moderation, failed jobs...) keep every success and raise
    :class:`~airflow_provider_bria.exceptions.BriaGenerationError` listing them.

    .. seealso:: ``docs/generation.md``

    :param model_id: the tailored model (``Completed``, FIBO) (templated).
    :param prompt: a prompt or a list of prompts (templated); map it with ``.expand(prompt=[...])``.
    :param prompts_file: path or object-store URI of a prompts file: JSON list or one per line (templated).
    :param structured_prompt: JSON string (or list of them) to recreate, or to refine with the prompts (templated).
    :param num_images_per_prompt: images per prompt, 1-100 (templated: ``"{{ params.images }}"`` renders to an
        int); image ``i`` uses seed ``seed + i``.
    :param negative_prompt: what to avoid (templated).
    :param tailored_model_influence: 0.0-1.5.
    :param guidance_scale: 3-5.
    :param aspect_ratio: one of ``contract.ASPECT_RATIOS`` (templated).
    :param steps_num: 20-50.
    :param seed: base seed (templated); ``None`` derives a fixed seed per (model, prompt, index).
    :param prompt_content_moderation: moderate prompts (Bria default ``True``).
    :param visual_output_content_moderation: moderate outputs (Bria default ``True``).
    :param output_path: folder path or ``ObjectStoragePath`` URI (templated); default
        ``file://$AIRFLOW_HOME/bria_outputs/<dag_id>/<run_id>``.
    :param output_conn_id: Airflow connection of the output store when not in the URI.
    :param deferrable: submit on the worker, then wait in the triggerer.
    """

    template_fields: Sequence[str] = (
        "bria_conn_id", "model_id", "prompt", "prompts_file", "structured_prompt", "negative_prompt",
        "aspect_ratio", "seed", "output_path", "max_requests",
    )
    template_fields_renderers = {"structured_prompt": "json", "prompt": "py"}
    template_numbers: ClassVar[Mapping[str, Number]] = {
        **GenerationBase.template_numbers, "num_images_per_prompt": Number(int, 1, 100),
    }
    _what = "images"

    def __init__(
        self,
        *,
        model_id: int | str,
        prompt: str | list[str] | None = None,
        prompts_file: str | None = None,
        structured_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        negative_prompt: str | None = None,
        tailored_model_influence: float | None = None,
        guidance_scale: int | None = None,
        aspect_ratio: str | None = None,
        steps_num: int | None = None,
        seed: int | str | None = None,
        prompt_content_moderation: bool | None = None,
        visual_output_content_moderation: bool | None = None,
        output_path: str | None = None,
        output_conn_id: str | None = None,
        deferrable: bool = default_deferrable(),
        **kwargs: Any,
    ) -> None:
        from airflow_provider_bria.hooks._inputs import optional_bool

        super().__init__(model_id=model_id, seed=seed, output_path=output_path, output_conn_id=output_conn_id,
                         **kwargs)
        self.deferrable = bool(deferrable)
        self.prompt = prompt
        self.prompts_file = prompts_file
        self.structured_prompt = structured_prompt
        self.num_images_per_prompt = self.number_arg("num_images_per_prompt", num_images_per_prompt)
        self.negative_prompt = negative_prompt
        self.tailored_model_influence = tailored_model_influence
        self.guidance_scale = guidance_scale
        self.aspect_ratio = aspect_ratio
        self.steps_num = steps_num
        self.prompt_content_moderation = optional_bool(prompt_content_moderation, "prompt_content_moderation")
        self.visual_output_content_moderation = optional_bool(
            visual_output_content_moderation, "visual_output_content_moderation"
        )
        contract.validate_v2_generation(prompt="-", structured_prompt=None, numbers=self._numbers())

    def _numbers(self) -> dict[str, Any]:
        return {"tailored_model_influence": self.tailored_model_influence, "guidance_scale": self.guidance_scale,
                "steps_num": self.steps_num}

    def _params(self) -> dict[str, Any]:
        return {**self._numbers(), "aspect_ratio": self.aspect_ratio, "negative_prompt": self.negative_prompt}

    def _plan(self, model_id: int) -> list[WorkItem]:
        from airflow_provider_bria.operators._generation_plan import (
            as_optional_seed,
            collect_prompts,
            pair_prompts,
            plan_items,
        )

        if self.aspect_ratio is not None and self.aspect_ratio not in contract.ASPECT_RATIOS:
            contract.validate_v2_generation(prompt="-", structured_prompt=None, aspect_ratio=self.aspect_ratio)
        seed = as_optional_seed(self.seed)
        pairs = pair_prompts(collect_prompts(self.prompt, self.prompts_file), self.structured_prompt)
        self._check_spend(len(pairs) * self.num_images_per_prompt,
                          f"{len(pairs)} prompt(s) x {self.num_images_per_prompt} image(s), one request per image")
        for prompt, structured in pairs:
            # seed_rule=False: every work item gets a seed (given + index, or derived), so a structured prompt
            # alone always goes out with one
            contract.validate_v2_generation(prompt=prompt, structured_prompt=structured,
                                            aspect_ratio=self.aspect_ratio, numbers=self._numbers(), seed=seed,
                                            seed_rule=False)
        return plan_items(model_id, pairs, kind=self._kind, per_request=self.num_images_per_prompt,
                          base_seed=seed, params=self._params())

    def _submit(self, model_id: int, item: WorkItem) -> V2Response:
        return self.hook.generate_image(
            model_id, prompt=item.prompt, structured_prompt=item.structured_prompt,
            negative_prompt=self.negative_prompt, tailored_model_influence=self.tailored_model_influence,
            guidance_scale=self.guidance_scale, aspect_ratio=self.aspect_ratio, steps_num=self.steps_num,
            seed=item.seed, sync=False, prompt_content_moderation=self.prompt_content_moderation,
            visual_output_content_moderation=self.visual_output_content_moderation,
        )

    def _finish(self, folder: OutputFolder | None, model_id: int, item: WorkItem,
                response: V2Response) -> dict[str, Any]:
        from airflow_provider_bria.hooks._redact import without_query
        from airflow_provider_bria.operators import _sidecar as sidecar
        from airflow_provider_bria.operators._outputs import check_image
        from airflow_provider_bria.operators._sidecar import SidecarStatus

        folder = self._required(folder)
        name = item.stem + self._ext
        info: dict[str, Any] = {}

        def check(data: bytes | None) -> None:
            img = check_image(data, self.aspect_ratio or contract.DEFAULT_ASPECT_RATIO, name=name,
                              max_pixels=self.max_output_pixels)
            info.update(width=img.width, height=img.height)

        seed = response.seed if response.seed is not None else item.seed
        record = {"uri": folder.uri_of(name), "seed": seed, "structured_prompt": response.structured_prompt,
                  "request_id": response.request_id, "prompt": item.prompt, "index": item.index, "existing": False}
        # sidecar first (the image's final name is the commit marker: a sidecar without image = not done)
        sidecar.write(folder, item.stem, SidecarStatus.COMPLETED, **record, model_id=model_id,
                      input_structured_prompt=item.structured_prompt, image_url=without_query(response.image_url))
        self._download_or_forget(folder, item, name, response.image_url, response.request_id, check=check)
        self.log.info("Saved %s (%sx%s) for %s", record["uri"], info.get("width"), info.get("height"), item.label())
        return record


class BriaGenerateStructuredPromptOperator(GenerationBase):
    """Turn prompts into structured prompts with a FIBO tailored model (v2), without generating images.

    Returns the structured prompt (a JSON string) for a single ``prompt`` string, else a list of them in
    prompt order. Submissions are rate-limited and polled like image jobs (or use ``sync=True``).

    :param model_id: the tailored model (templated).
    :param prompt: a prompt or a list of prompts (templated).
    :param prompts_file: path or object-store URI of a prompts file (templated).
    :param structured_prompt: a structured prompt to refine with each prompt (templated).
    :param seed: base seed (templated); ``None`` derives a fixed seed per prompt.
    :param prompt_content_moderation: moderate prompts (Bria default ``True``).
    :param sync: ask Bria for the result in the submission response instead of polling.
    :param output_path: optional folder path or URI (templated) where each result is kept as
        ``<slug>-<sha12>.json`` (from model, prompt, structured prompt, seed): a retry or re-run reuses the
        saved results and resumes submitted jobs instead of paying again. ``None``: nothing is stored.
    :param output_conn_id: Airflow connection of the output store when not in the URI.
    """

    template_fields: Sequence[str] = ("bria_conn_id", "model_id", "prompt", "prompts_file", "structured_prompt",
                                      "seed", "output_path", "max_requests")
    template_fields_renderers = {"structured_prompt": "json", "prompt": "py"}
    _kind = "structured_prompt"
    _what = "structured prompts"

    def __init__(
        self,
        *,
        model_id: int | str,
        prompt: str | list[str] | None = None,
        prompts_file: str | None = None,
        structured_prompt: str | None = None,
        seed: int | str | None = None,
        prompt_content_moderation: bool | None = None,
        sync: bool = False,
        output_path: str | None = None,
        output_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_bria.hooks._inputs import optional_bool

        super().__init__(model_id=model_id, seed=seed, output_path=output_path, output_conn_id=output_conn_id,
                         **kwargs)
        self.prompt = prompt
        self.prompts_file = prompts_file
        self.structured_prompt = structured_prompt
        self.prompt_content_moderation = optional_bool(prompt_content_moderation, "prompt_content_moderation")
        self.sync = bool(sync)

    def _plan(self, model_id: int) -> list[WorkItem]:
        from airflow_provider_bria.operators._generation_plan import as_optional_seed, collect_prompts, plan_items

        seed = as_optional_seed(self.seed)
        prompts = collect_prompts(self.prompt, self.prompts_file)
        if not prompts:
            raise BriaInputError("BriaGenerateStructuredPromptOperator needs prompt or prompts_file")
        self._check_spend(len(prompts), f"{len(prompts)} prompt(s), one request each")
        structured = self.structured_prompt if self.structured_prompt else None
        if isinstance(structured, dict):  # a natively rendered template
            structured = json.dumps(structured)
        for p in prompts:
            contract.validate_v2_generation(prompt=p, structured_prompt=structured, seed=seed)
        return plan_items(model_id, [(p, structured) for p in prompts], kind=self._kind, per_request=1,
                          base_seed=seed)

    def _stores(self) -> bool:
        return self.output_path is not None and bool(str(self.output_path).strip())

    def _failure_name(self, item: WorkItem) -> str | None:
        from airflow_provider_bria.operators import _sidecar as sidecar

        return sidecar.name_of(item.stem) if self._stores() else None

    def _existing(self, batch: Batch) -> dict[str, Any]:
        """Structured prompts an earlier try saved, by item stem (sidecars read in parallel)."""
        from airflow_provider_bria.operators import _sidecar as sidecar
        from airflow_provider_bria.operators._generation_files import read_parallel
        from airflow_provider_bria.operators._sidecar import SidecarStatus

        folder = self._required(batch.folder)
        stored = [i for i in batch.items if sidecar.name_of(i.stem) in batch.names]

        def one(item: WorkItem) -> str | None:
            value = sidecar.read_if(folder, item.stem, SidecarStatus.COMPLETED).get("structured_prompt")
            return value if isinstance(value, str) and value else None

        found = read_parallel(one, stored)
        return {i.stem: v for i, v in zip(stored, found, strict=True) if v is not None}

    def _submit(self, model_id: int, item: WorkItem) -> V2Response:
        return self.hook.generate_structured_prompt(
            model_id, prompt=item.prompt, structured_prompt=item.structured_prompt, seed=item.seed,
            sync=self.sync, prompt_content_moderation=self.prompt_content_moderation,
        )

    def _finish(self, folder: OutputFolder | None, model_id: int, item: WorkItem, response: V2Response) -> str:
        from airflow_provider_bria.operators import _sidecar as sidecar
        from airflow_provider_bria.operators._generation_failures import ItemFailed
        from airflow_provider_bria.operators._sidecar import SidecarStatus

        if not response.structured_prompt:
            raise ItemFailed("job_failed", "the job completed without a structured_prompt",
                             request_id=response.request_id)
        if folder is not None:
            sidecar.write(folder, item.stem, SidecarStatus.COMPLETED, structured_prompt=response.structured_prompt,
                          model_id=model_id, prompt=item.prompt, input_structured_prompt=item.structured_prompt,
                          seed=response.seed if response.seed is not None else item.seed,
                          request_id=response.request_id)
        return response.structured_prompt

    def _shape(self, results: list[Any]) -> str | list[str] | None:
        """One structured prompt for a single ``prompt`` string, else the list in prompt order."""
        if isinstance(self.prompt, str) and not self.prompts_file:
            return results[0] if results else None  # one prompt in, one structured prompt out
        return results


class BriaGenerateVideoOperator(OutputsMixin, GenerationBase):
    """Animate an image into a 5-second MP4 with a tailored model (v2 image-to-video, always asynchronous).

    The video is saved as ``video-<image name>-<sha12>.mp4`` (the source image's file name; ``image`` for
    base64 input; the hash from model, image content or URL, seed) with a ``.json`` sidecar in
    ``output_path``; a retry resumes the submitted job or skips an existing video. Returns
    ``{uri, seed, request_id, video_url, existing}``.

    :param model_id: the tailored model (``Completed``; FIBO or legacy) (templated).
    :param image: http(s) URL, base64, data URI, local path or ``ObjectStoragePath`` URI (templated).
    :param seed: seed (templated); ``None`` derives a fixed seed from (model, image).
    :param output_path: folder path or URI (templated); default ``file://$AIRFLOW_HOME/bria_outputs/<dag>/<run>``.
    :param output_conn_id: Airflow connection of the output store when not in the URI.
    :param deferrable: wait in the triggerer instead of on the worker.
    """

    template_fields: Sequence[str] = ("bria_conn_id", "model_id", "image", "seed", "output_path", "max_requests")
    _kind = "video"
    _api = "video"
    _what = "videos"
    _ext = ".mp4"
    _default_max_bytes = DEFAULT_MAX_VIDEO_BYTES

    def __init__(
        self,
        *,
        model_id: int | str,
        image: str,
        seed: int | str | None = None,
        output_path: str | None = None,
        output_conn_id: str | None = None,
        deferrable: bool = default_deferrable(),
        poll_interval: float = 5.0,
        timeout: float = 1800.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model_id=model_id, seed=seed, output_path=output_path, output_conn_id=output_conn_id,
                         poll_interval=poll_interval, timeout=timeout, **kwargs)
        self.deferrable = bool(deferrable)
        self.image = image
        self._payload: str | None = None

    def _plan(self, model_id: int) -> list[WorkItem]:
        from airflow_provider_bria.operators._generation_inputs import read_image_input

        self._check_spend(1, "one video")
        self._payload, identity = read_image_input(self.image)
        return [self._item(model_id, identity)]

    def _item(self, model_id: int, identity: str) -> WorkItem:
        from airflow_provider_bria.operators._generation_plan import (
            WorkItem,
            as_optional_seed,
            derive_seed,
            digest,
            slugify,
        )

        seed = as_optional_seed(self.seed)
        if seed is None:
            seed = derive_seed(model_id, identity, None, 0, self._kind)
        name = image_file_name(self.image)
        source = name or identity[:19]
        slug_src = name.rsplit(".", 1)[0] if name else "image"
        sha = digest("video", model_id, identity, seed)[:12]
        stem = f"video-{slugify(slug_src, fallback='image', max_len=24)}-{sha}"
        return WorkItem(stem=stem, index=0, seed=seed, extra={"image": identity[:300], "source": source})

    def _existing_record(self, folder: OutputFolder, item: WorkItem) -> dict[str, Any]:
        from airflow_provider_bria.hooks._redact import without_query
        from airflow_provider_bria.operators import _sidecar as sidecar

        side = sidecar.read(folder, item.stem)
        uri = folder.uri_of(item.stem + self._ext)
        self.log.info("Video %s already exists: not generating it again", uri)
        return {"uri": uri, "seed": side.get("seed", item.seed), "request_id": side.get("request_id"),
                "video_url": without_query(side.get("video_url")), "existing": True}

    def _submit(self, model_id: int, item: WorkItem) -> V2Response:
        if self._payload is None:  # pragma: no cover - _plan always runs first
            raise BriaInputError("image was not read")
        return self.hook.image_to_video(model_id, self._payload, seed=item.seed)

    def _finish(self, folder: OutputFolder | None, model_id: int, item: WorkItem,
                response: V2Response) -> dict[str, Any]:
        from airflow_provider_bria.hooks._redact import without_query
        from airflow_provider_bria.operators import _sidecar as sidecar
        from airflow_provider_bria.operators._sidecar import SidecarStatus

        folder = self._required(folder)
        name = item.stem + self._ext
        record = {"uri": folder.uri_of(name), "seed": response.seed if response.seed is not None else item.seed,
                  "request_id": response.request_id, "video_url": without_query(response.video_url),
                  "existing": False}
        sidecar.write(folder, item.stem, SidecarStatus.COMPLETED, **record, image=item.extra.get("image"))
        size, _ = self._download_or_forget(folder, item, name, response.video_url, response.request_id)
        self.log.info("Saved video %s (%d bytes)", record["uri"], size)
        return record

    def _shape(self, results: list[Any]) -> dict[str, Any] | None:
        """The single video record (``None`` when it failed and ``fail_on_error=False``)."""
        return results[0] if results else None


class BriaGenerateLegacyImagesOperator(OutputsMixin, GenerationBase):
    """Generate images with a legacy tailored model (v1 ``/text-to-image/tailored/{model_id}``, synchronous).

    One request per prompt returns ``num_results`` images, saved as ``<slug>-<sha12>-<k>.png`` (+ one sidecar
    per request); a prompt whose images all exist is not requested again. The image URLs are saved in the
    sidecar as soon as Bria answers, so a retry downloads them instead of paying for the prompt again (unless
    they stopped working, e.g. expired). Returns one
    ``{uri, seed, structured_prompt (None), request_id (None), prompt, index, existing}`` per image.

    :param model_id: a ``Completed`` legacy model (templated).
    :param prompt: a prompt or a list of prompts (templated).
    :param prompts_file: path or object-store URI of a prompts file (templated).
    :param num_results: images per prompt (1-4; 1-2 when ``fast=False``).
    :param aspect_ratio: one of ``contract.ASPECT_RATIOS`` (templated).
    :param fast: fast mode.
    :param steps_num: diffusion steps.
    :param include_generation_prefix: prepend the model's generation prefix (Bria default on).
    :param model_influence: influence of the tailored model.
    :param negative_prompt: what to avoid (templated).
    :param seed: seed (templated); ``None`` derives a fixed seed per (model, prompt).
    :param content_moderation: moderate prompt and output.
    :param prompt_enhancement: let Bria enhance the prompt.
    :param extra_params: further documented v1 fields (``guidance_method_1``...), sent as given.
    :param output_path: folder path or URI (templated); default ``file://$AIRFLOW_HOME/bria_outputs/<dag>/<run>``.
    :param output_conn_id: Airflow connection of the output store when not in the URI.
    """

    template_fields: Sequence[str] = ("bria_conn_id", "model_id", "prompt", "prompts_file", "negative_prompt",
                                      "aspect_ratio", "seed", "output_path", "max_requests")
    template_fields_renderers = {"prompt": "py", "extra_params": "json"}
    _kind = "legacy"
    _api = "v1"
    _what = "images"

    def __init__(
        self,
        *,
        model_id: int | str,
        prompt: str | list[str] | None = None,
        prompts_file: str | None = None,
        num_results: int = 1,
        aspect_ratio: str | None = None,
        fast: bool | None = None,
        steps_num: int | None = None,
        include_generation_prefix: bool | None = None,
        model_influence: float | None = None,
        negative_prompt: str | None = None,
        seed: int | str | None = None,
        content_moderation: bool | None = None,
        prompt_enhancement: bool | None = None,
        extra_params: dict[str, Any] | None = None,
        output_path: str | None = None,
        output_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_bria.hooks._inputs import optional_bool
        from airflow_provider_bria.operators._generation_plan import as_int

        super().__init__(model_id=model_id, seed=seed, output_path=output_path, output_conn_id=output_conn_id,
                         **kwargs)
        self.prompt = prompt
        self.prompts_file = prompts_file
        self.num_results = as_int(num_results, "num_results", minimum=1, maximum=4)
        if fast is False and self.num_results > 2:
            raise BriaInputError(f"num_results must be 1-2 when fast=False, got {self.num_results}")
        self.aspect_ratio = aspect_ratio
        self.fast = optional_bool(fast, "fast")
        self.steps_num = None if steps_num is None else as_int(steps_num, "steps_num", minimum=1)
        self.include_generation_prefix = optional_bool(include_generation_prefix, "include_generation_prefix")
        if model_influence is not None:
            positive(model_influence, "model_influence")
        self.model_influence = model_influence
        self.negative_prompt = negative_prompt
        self.content_moderation = optional_bool(content_moderation, "content_moderation")
        self.prompt_enhancement = optional_bool(prompt_enhancement, "prompt_enhancement")
        self.extra_params = dict(extra_params or {})

    def _params(self) -> dict[str, Any]:
        return {"num_results": self.num_results, "aspect_ratio": self.aspect_ratio, "fast": self.fast,
                "steps_num": self.steps_num, "include_generation_prefix": self.include_generation_prefix,
                "model_influence": self.model_influence, "negative_prompt": self.negative_prompt,
                "prompt_enhancement": self.prompt_enhancement, **self.extra_params}

    def _plan(self, model_id: int) -> list[WorkItem]:
        from airflow_provider_bria.operators._generation_plan import as_optional_seed, collect_prompts, plan_items

        if self.aspect_ratio is not None and self.aspect_ratio not in contract.ASPECT_RATIOS:
            contract.validate_v2_generation(prompt="-", structured_prompt=None, aspect_ratio=self.aspect_ratio)
        seed = as_optional_seed(self.seed)
        prompts = collect_prompts(self.prompt, self.prompts_file)
        if not prompts:
            raise BriaInputError("BriaGenerateLegacyImagesOperator needs prompt or prompts_file")
        self._check_spend(len(prompts), f"{len(prompts)} prompt(s), one request each")
        return plan_items(model_id, [(p, None) for p in prompts], kind=self._kind, per_request=1, base_seed=seed,
                          params=self._params())

    def _files(self, item: WorkItem) -> list[str]:
        return [f"{item.stem}-{k}{self._ext}" for k in range(self.num_results)]

    def _failure_name(self, item: WorkItem) -> str | None:
        return item.stem + self._ext

    def _order(self, items: Sequence[WorkItem]) -> list[str]:
        return [f"{i.stem}#{k}" for i in items for k in range(self.num_results)]

    def _flat(self, records: dict[str, Any]) -> dict[str, Any]:
        return {f"{stem}#{r['index']}": r for stem, recs in records.items() for r in recs}

    def _produce(self, batch: Batch, todo: list[WorkItem]) -> list[Failure]:
        """One synchronous v1 request per prompt (no job to poll or defer), with bounded concurrency."""
        folder = self._required(batch.folder)
        runner = self._runner_for(submit=lambda item: None, finish=lambda item, resp: {},
                                  name_of=self._failure_name)
        done, failures = runner.run_each(
            todo, lambda item: self._generate(folder, batch.model_id, item, runner, batch.names))
        batch.records.update(done)
        return failures

    def _request(self, model_id: int, item: WorkItem, runner: JobRunner) -> list[tuple[str, int | None]]:
        """The one billable v1 request of a prompt: its image URLs with their seeds."""
        from airflow_provider_bria.operators._generation_failures import ItemFailed
        from airflow_provider_bria.responses import normalize_v1_result

        runner.acquire()
        body = self.hook.text_to_image_legacy(
            model_id, item.prompt or "", num_results=self.num_results, aspect_ratio=self.aspect_ratio, sync=True,
            seed=item.seed, model_influence=self.model_influence, negative_prompt=self.negative_prompt,
            fast=self.fast, steps_num=self.steps_num, include_generation_prefix=self.include_generation_prefix,
            prompt_enhancement=self.prompt_enhancement, content_moderation=self.content_moderation,
            **self.extra_params,
        )
        urls = [(str(u), r.get("seed")) for r in normalize_v1_result(body) for u in r["urls"]]
        self.log.info("Legacy request for %s returned %d image URL(s)", item.label(), len(urls))
        if not urls:
            raise ItemFailed("job_failed", f"the v1 response had no image URLs: {str(body)[:300]}")
        return urls

    def _saved_urls(self, folder: OutputFolder, names: set[str],
                    item: WorkItem) -> tuple[list[tuple[str, int | None]], set[str]]:
        """The image URLs an earlier try got from Bria for this prompt, if some of their files are missing, and
        those of them whose tag shows this provider saved them (only those may get the api_token)."""
        from airflow_provider_bria.operators import _sidecar as sidecar

        if sidecar.name_of(item.stem) not in names:
            return [], set()
        side = sidecar.read_if(folder, item.stem, *sidecar.URLS_REUSABLE)
        urls, seeds = sidecar.saved_list(side, "urls"), sidecar.saved_list(side, "seeds")
        saved = [(str(u), seeds[k] if k < len(seeds) else None) for k, u in enumerate(urls) if u]
        if not saved or all(n in names for n in self._files(item)[: len(saved)]):
            return [], set()  # nothing saved, or every saved image is there: the earlier response was short
        tags = sidecar.saved_list(side, "url_tags")
        return saved, {u for k, (u, _) in enumerate(saved) if k < len(tags) and self.hook.trusts_url(u, tags[k])}

    def _url_sidecar(self, urls: list[tuple[str, int | None]]) -> dict[str, Any]:
        """The sidecar fields of a v1 response's URLs: the URLs, their seeds and their tags (see ``url_tag``)."""
        return {"urls": [u for u, _ in urls], "seeds": [s for _, s in urls],
                "url_tags": [self.hook.url_tag(u) for u, _ in urls]}

    def _save_images(self, folder: OutputFolder, model_id: int, item: WorkItem, urls: list[tuple[str, int | None]],
                     names: set[str], *, trusted: set[str] | None = None) -> list[dict[str, Any]]:
        """Download the images of one v1 response that are not in the folder yet, then mark the prompt done.

        :param trusted: ``None`` when the URLs come from Bria's answer in this try; for URLs read back from a
            sidecar, those whose tag proves this provider saved them: only they may get the api_token (a
            sidecar is data anyone with write access to the folder can edit).
        """
        from airflow_provider_bria.operators import _sidecar as sidecar
        from airflow_provider_bria.operators._generation_failures import ItemFailed
        from airflow_provider_bria.operators._outputs import check_image
        from airflow_provider_bria.operators._sidecar import SidecarStatus

        records = []
        for k, name in enumerate(self._files(item)[: len(urls)]):
            url, seed = urls[k]
            existing = name in names
            if not existing:
                self._download(folder, name, url, None, trusted=trusted is None or url in trusted,
                               check=partial(check_image, aspect_ratio=self.aspect_ratio, name=name,
                                             max_pixels=self.max_output_pixels))
            records.append({"uri": folder.uri_of(name), "seed": seed if seed is not None else item.seed,
                            "structured_prompt": None, "request_id": None, "prompt": item.prompt, "index": k,
                            "existing": existing})
        sidecar.write(folder, item.stem, SidecarStatus.COMPLETED, model_id=model_id, prompt=item.prompt,
                      seed=item.seed, **self._url_sidecar(urls), **{sidecar.OUTPUTS_FIELD: records})
        if len(urls) < self.num_results:
            raise ItemFailed("job_failed", f"asked for {self.num_results} images, got {len(urls)} (kept)")
        return records

    def _generate(self, folder: OutputFolder, model_id: int, item: WorkItem, runner: JobRunner,
                  names: set[str]) -> list[dict[str, Any]]:
        """Produce one prompt's images: from the URLs an earlier try saved, else with one new v1 request.

        The URLs are saved (sidecar ``status: generated``) right after Bria answers and before any download,
        so a failed download or a killed task never pays for the prompt twice; only URLs that stopped working
        (4xx, e.g. an expired pre-signed URL) make the prompt be requested again.
        """
        from airflow_provider_bria.operators import _sidecar as sidecar
        from airflow_provider_bria.operators._generation_failures import ItemFailed
        from airflow_provider_bria.operators._sidecar import SidecarStatus

        saved, trusted = self._saved_urls(folder, names, item)
        if saved:
            self.log.info("Downloading the %d image(s) an earlier try got for %s (no new request)", len(saved),
                          item.label())
            try:
                return self._save_images(folder, model_id, item, saved, names, trusted=trusted)
            except ItemFailed as err:
                if err.kind != "download" or err.status_code is None or not 400 <= err.status_code < 500:
                    raise  # transient: keep the saved URLs for the next try
                self.log.warning("The saved image URLs of %s no longer work (%s): requesting it again",
                                 item.label(), err)
                sidecar.write(folder, item.stem, SidecarStatus.URL_UNUSABLE, model_id=model_id,
                              prompt=item.prompt, seed=item.seed)
                names = folder.names()
        urls = self._request(model_id, item, runner)
        sidecar.write(folder, item.stem, SidecarStatus.GENERATED, model_id=model_id, prompt=item.prompt,
                      seed=item.seed, **self._url_sidecar(urls), generated_at=time.time())
        return self._save_images(folder, model_id, item, urls, names)

    def _existing_record(self, folder: OutputFolder, item: WorkItem) -> list[dict[str, Any]]:
        """Records of a prompt whose images all exist (seeds from its sidecar when it has them)."""
        from airflow_provider_bria.operators import _sidecar as sidecar
        from airflow_provider_bria.operators._sidecar import SidecarStatus

        seeds = sidecar.saved_list(sidecar.read_if(folder, item.stem, SidecarStatus.COMPLETED), "seeds")
        base = super()._existing_record(folder, item)
        return [{**base, "uri": folder.uri_of(n), "index": k,
                 "seed": seeds[k] if k < len(seeds) and seeds[k] is not None else base["seed"]}
                for k, n in enumerate(self._files(item))]
