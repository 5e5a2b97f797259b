"""Generation operators: v2 tailored images (many prompts), structured prompts, image-to-video, legacy v1 images.

Outputs land in any Airflow object store under deterministic names, so a retried or re-run task skips what
already exists; see ``docs/generation.md`` for the full behaviour (rate limits, retries, deferral).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_bria import contract
from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.hooks._redact import without_query
from airflow_provider_bria.operators._generation_base import (
    GenerationBase,
    OutputsMixin,
    default_deferrable,
    optional_bool,
    positive,
)
from airflow_provider_bria.operators._generation_engine import ItemFailed, JobRunner, failure_entry
from airflow_provider_bria.operators._generation_plan import (
    WorkItem,
    as_int,
    as_model_id,
    as_optional_seed,
    collect_prompts,
    derive_seed,
    digest,
    pair_prompts,
    plan_items,
    read_prompts_file,
    slugify,
)
from airflow_provider_bria.operators._outputs import DEFAULT_MAX_VIDEO_BYTES
from airflow_provider_bria.operators.base import Number

if TYPE_CHECKING:
    from airflow.sdk import Context

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


def _first(results: list[Any]) -> Any:
    """The single result of a one-output operator (``None`` when it failed and ``fail_on_error=False``)."""
    return results[0] if results else None


__all__ = [
    "BriaGenerateImagesOperator",
    "BriaGenerateLegacyImagesOperator",
    "BriaGenerateStructuredPromptOperator",
    "BriaGenerateVideoOperator",
    "read_prompts_file",
]


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
        super().__init__(**kwargs)
        self.model_id = model_id
        self.prompt = prompt
        self.prompts_file = prompts_file
        self.structured_prompt = structured_prompt
        self.num_images_per_prompt = self.number_arg("num_images_per_prompt", num_images_per_prompt)
        self.negative_prompt = negative_prompt
        self.tailored_model_influence = tailored_model_influence
        self.guidance_scale = guidance_scale
        self.aspect_ratio = aspect_ratio
        self.steps_num = steps_num
        self.seed = seed
        self.prompt_content_moderation = optional_bool(prompt_content_moderation, "prompt_content_moderation")
        self.visual_output_content_moderation = optional_bool(
            visual_output_content_moderation, "visual_output_content_moderation"
        )
        self.output_path = output_path
        self.output_conn_id = output_conn_id
        self.deferrable = bool(deferrable)
        contract.validate_v2_generation(prompt="-", structured_prompt=None, numbers=self._numbers())

    def _numbers(self) -> dict[str, Any]:
        return {"tailored_model_influence": self.tailored_model_influence, "guidance_scale": self.guidance_scale,
                "steps_num": self.steps_num}

    def _params(self) -> dict[str, Any]:
        return {**self._numbers(), "aspect_ratio": self.aspect_ratio, "negative_prompt": self.negative_prompt}

    def _plan(self, model_id: int) -> list[WorkItem]:
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

    def _submit_one(self, model_id: int, item: WorkItem) -> V2Response:
        return self.hook.generate_image(
            model_id, prompt=item.prompt, structured_prompt=item.structured_prompt,
            negative_prompt=self.negative_prompt, tailored_model_influence=self.tailored_model_influence,
            guidance_scale=self.guidance_scale, aspect_ratio=self.aspect_ratio, steps_num=self.steps_num,
            seed=item.seed, sync=False, prompt_content_moderation=self.prompt_content_moderation,
            visual_output_content_moderation=self.visual_output_content_moderation,
        )

    def _finish_one(self, folder: OutputFolder, model_id: int, item: WorkItem, response: V2Response) -> dict[str, Any]:
        from airflow_provider_bria.operators._outputs import check_image

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
        folder.write_json(f"{item.stem}.json", {**record, "status": "completed", "model_id": model_id,
                                                 "input_structured_prompt": item.structured_prompt,
                                                 "image_url": without_query(response.image_url)})
        self._download_or_forget(folder, item, name, response.image_url, response.request_id, check=check)
        self.log.info("Saved %s (%sx%s) for %s", record["uri"], info.get("width"), info.get("height"), item.label())
        return record

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Plan, skip existing outputs, check the model, then generate the rest (or defer)."""
        model_id = as_model_id(self.model_id)
        items = self._plan(model_id)
        folder = self._folder(context, self.output_path, self.output_conn_id)
        context["ti"].xcom_push(key="output_path", value=folder.uri)
        names = folder.names(clean=[n for i in items for n in (i.stem + self._ext, f"{i.stem}.json")])
        records = self._existing_records(folder, [i for i in items if i.stem + self._ext in names])
        todo = [i for i in items if i.stem not in records]
        self.log.info("%d image(s) planned for model %s: %d already exist, %d to generate", len(items), model_id,
                      len(records), len(todo))
        if not todo:
            return [records[i.stem] for i in items]
        self._check_model(model_id)
        runner = self._runner_for(
            submit=lambda item: self._submit_one(model_id, item),
            finish=lambda item, resp: self._finish_one(folder, model_id, item, resp),
            resume=lambda item: self._saved_handle(folder, names, item),
            on_submitted=lambda item, resp: self._save_submitted(folder, item, resp, model_id),
            name_of=lambda item: item.stem + self._ext,
        )
        order = [i.stem for i in items]
        if not self.deferrable:
            done, failures = runner.run(todo)
            return self._conclude(context, order, {**records, **done}, failures, folder.uri)
        jobs, failures = runner.submit_all(todo)
        jobs = runner.poll_once(jobs) if runner.fatal is None else jobs
        ready = [j for j in jobs if j.response.is_terminal]
        pending = [j for j in jobs if not j.response.is_terminal]
        done, more = runner.finish_all(ready)
        records.update(done)
        failures += more
        if pending and runner.fatal is None:
            self._defer_jobs(pending, records=records, failures=failures, order=order, folder=folder.uri)
        return self._conclude(context, order, records, failures, folder.uri)

    def execute_complete(self, context: Context, event: Any = None, **_: Any) -> list[dict[str, Any]]:
        """Resume after :class:`~airflow_provider_bria.triggers.job.BriaJobTrigger`: download the finished jobs."""
        from airflow_provider_bria.operators._outputs import OutputFolder

        state = self._event_state(event)
        model_id = as_model_id(self.model_id)
        out = OutputFolder(str(state["folder"]), conn_id=self.output_conn_id)
        records = dict(state.get("records") or {})
        failures = list(state.get("failures") or [])
        done_jobs, unfinished = self._resumed_jobs(event, state["pending"])
        failures += [failure_entry(item, err, name=item.stem + self._ext) for item, err in unfinished]
        runner = self._runner_for(submit=lambda item: self._submit_one(model_id, item),
                                  finish=lambda item, resp: self._finish_one(out, model_id, item, resp),
                                  name_of=lambda item: item.stem + self._ext)
        done, more = runner.finish_all(done_jobs)
        records.update(done)
        return self._conclude(context, state.get("order") or [], records, failures + more, out.uri)


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
        super().__init__(**kwargs)
        self.model_id = model_id
        self.prompt = prompt
        self.prompts_file = prompts_file
        self.structured_prompt = structured_prompt
        self.seed = seed
        self.prompt_content_moderation = optional_bool(prompt_content_moderation, "prompt_content_moderation")
        self.sync = bool(sync)
        self.output_path = output_path
        self.output_conn_id = output_conn_id

    @staticmethod
    def _saved_results(folder: OutputFolder, names: set[str], items: Sequence[WorkItem]) -> dict[str, str]:
        """Structured prompts an earlier try saved, by item stem (sidecars read in parallel).

        :param folder: the output folder.
        :param names: the folder's file names.
        :param items: the planned items.
        """
        stored = [i for i in items if f"{i.stem}.json" in names]

        def one(item: WorkItem) -> str | None:
            side = folder.read_json(f"{item.stem}.json") or {}
            value = side.get("structured_prompt")
            return value if side.get("status") == "completed" and isinstance(value, str) and value else None

        if len(stored) <= 1:
            found = [one(i) for i in stored]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(8, len(stored)), thread_name_prefix="bria-sidecar") as pool:
                found = list(pool.map(one, stored))
        return {i.stem: v for i, v in zip(stored, found, strict=True) if v is not None}

    def execute(self, context: Context) -> str | list[str] | None:
        """Generate one structured prompt per prompt."""
        model_id = as_model_id(self.model_id)
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
        items = plan_items(model_id, [(p, structured) for p in prompts], kind=self._kind, per_request=1,
                           base_seed=seed)
        folder: OutputFolder | None = None
        saved: dict[str, str] = {}
        names: set[str] = set()
        if self.output_path is not None and str(self.output_path).strip():
            folder = self._folder(context, self.output_path, self.output_conn_id)
            context["ti"].xcom_push(key="output_path", value=folder.uri)
            names = folder.names(clean=[f"{i.stem}.json" for i in items])
            saved = self._saved_results(folder, names, items)
        todo = [i for i in items if i.stem not in saved]
        self.log.info("%d structured prompt(s) planned for model %s: %d saved by an earlier try, %d to generate",
                      len(items), model_id, len(saved), len(todo))
        order = [i.stem for i in items]
        if not todo:
            return self._shape([saved[s] for s in order])
        self._check_model(model_id)

        def submit(item: WorkItem) -> V2Response:
            return self.hook.generate_structured_prompt(
                model_id, prompt=item.prompt, structured_prompt=item.structured_prompt, seed=item.seed,
                sync=self.sync, prompt_content_moderation=self.prompt_content_moderation,
            )

        def finish(item: WorkItem, response: V2Response) -> str:
            if not response.structured_prompt:
                raise ItemFailed("job_failed", "the job completed without a structured_prompt",
                                 request_id=response.request_id)
            if folder is not None:
                folder.write_json(f"{item.stem}.json", {
                    "status": "completed", "structured_prompt": response.structured_prompt, "model_id": model_id,
                    "prompt": item.prompt, "input_structured_prompt": item.structured_prompt,
                    "seed": response.seed if response.seed is not None else item.seed,
                    "request_id": response.request_id,
                })
            return response.structured_prompt

        if folder is None:
            runner = self._runner_for(submit=submit, finish=finish)
        else:
            out = folder
            runner = self._runner_for(
                submit=submit, finish=finish, name_of=lambda item: f"{item.stem}.json",
                resume=lambda item: OutputsMixin._saved_handle(out, names, item),
                on_submitted=lambda item, resp: OutputsMixin._save_submitted(out, item, resp, model_id),
            )
        done, failures = runner.run(todo)
        results = self._conclude(context, order, {**saved, **done}, failures, folder.uri if folder else None)
        return self._shape(results)

    def _shape(self, results: list[str]) -> str | list[str] | None:
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
        super().__init__(poll_interval=poll_interval, timeout=timeout, **kwargs)
        self.model_id = model_id
        self.image = image
        self.seed = seed
        self.output_path = output_path
        self.output_conn_id = output_conn_id
        self.deferrable = bool(deferrable)

    def _item(self, model_id: int, identity: str) -> WorkItem:
        seed = as_optional_seed(self.seed)
        if seed is None:
            seed = derive_seed(model_id, identity, None, 0, self._kind)
        name = image_file_name(self.image)
        source = name or identity[:19]
        slug_src = name.rsplit(".", 1)[0] if name else "image"
        sha = digest("video", model_id, identity, seed)[:12]
        stem = f"video-{slugify(slug_src, fallback='image', max_len=24)}-{sha}"
        return WorkItem(stem=stem, index=0, seed=seed, extra={"image": identity[:300], "source": source})

    def _finish(self, folder: OutputFolder, item: WorkItem, response: V2Response) -> dict[str, Any]:
        name = f"{item.stem}.mp4"
        record = {"uri": folder.uri_of(name), "seed": response.seed if response.seed is not None else item.seed,
                  "request_id": response.request_id, "video_url": without_query(response.video_url),
                  "existing": False}
        folder.write_json(f"{item.stem}.json", {**record, "status": "completed", "image": item.extra.get("image")})
        size, _ = self._download_or_forget(folder, item, name, response.video_url, response.request_id)
        self.log.info("Saved video %s (%d bytes)", record["uri"], size)
        return record

    def execute(self, context: Context) -> dict[str, Any] | None:
        """Submit (or resume) the video job, wait for it (or defer), and save the MP4."""
        from airflow_provider_bria.operators._generation_inputs import read_image_input

        model_id = as_model_id(self.model_id)
        self._check_spend(1, "one video")
        payload, identity = read_image_input(self.image)
        item = self._item(model_id, identity)
        folder = self._folder(context, self.output_path, self.output_conn_id)
        context["ti"].xcom_push(key="output_path", value=folder.uri)
        names = folder.names(clean=[f"{item.stem}.mp4", f"{item.stem}.json"])
        if f"{item.stem}.mp4" in names:
            side = folder.read_json(f"{item.stem}.json") or {}
            self.log.info("Video %s already exists: not generating it again", folder.uri_of(f"{item.stem}.mp4"))
            return {"uri": folder.uri_of(f"{item.stem}.mp4"), "seed": side.get("seed", item.seed),
                    "request_id": side.get("request_id"), "video_url": without_query(side.get("video_url")),
                    "existing": True}
        self._check_model(model_id)
        runner = self._runner_for(
            submit=lambda it: self.hook.image_to_video(model_id, payload, seed=it.seed),
            finish=lambda it, resp: self._finish(folder, it, resp),
            resume=lambda it: self._saved_handle(folder, names, it),
            on_submitted=lambda it, resp: self._save_submitted(folder, it, resp, model_id),
            name_of=lambda it: f"{it.stem}.mp4",
        )
        if not self.deferrable:
            done, failures = runner.run([item])
            return _first(self._conclude(context, [item.stem], done, failures, folder.uri))
        jobs, failures = runner.submit_all([item])
        if jobs and runner.fatal is None:
            jobs = runner.poll_once(jobs)
            if not jobs[0].response.is_terminal:
                self._defer_jobs(jobs, folder=folder.uri)
        done, more = runner.finish_all(jobs)
        return _first(self._conclude(context, [item.stem], done, failures + more, folder.uri))

    def execute_complete(self, context: Context, event: Any = None, **_: Any) -> dict[str, Any] | None:
        """Resume after the trigger: save the video."""
        from airflow_provider_bria.operators._outputs import OutputFolder

        state = self._event_state(event)
        out = OutputFolder(str(state["folder"]), conn_id=self.output_conn_id)
        done_jobs, unfinished = self._resumed_jobs(event, state["pending"])
        failures = [failure_entry(item, err, name=f"{item.stem}.mp4") for item, err in unfinished]
        runner = self._runner_for(submit=lambda it: None, finish=lambda it, resp: self._finish(out, it, resp))
        done, more = runner.finish_all(done_jobs)
        order = [WorkItem.from_json(p["item"]).stem for p in state["pending"]]
        return _first(self._conclude(context, order, done, failures + more, out.uri))


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
        super().__init__(**kwargs)
        self.model_id = model_id
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
        self.seed = seed
        self.content_moderation = optional_bool(content_moderation, "content_moderation")
        self.prompt_enhancement = optional_bool(prompt_enhancement, "prompt_enhancement")
        self.extra_params = dict(extra_params or {})
        self.output_path = output_path
        self.output_conn_id = output_conn_id

    def _params(self) -> dict[str, Any]:
        return {"num_results": self.num_results, "aspect_ratio": self.aspect_ratio, "fast": self.fast,
                "steps_num": self.steps_num, "include_generation_prefix": self.include_generation_prefix,
                "model_influence": self.model_influence, "negative_prompt": self.negative_prompt,
                "prompt_enhancement": self.prompt_enhancement, **self.extra_params}

    def _names(self, item: WorkItem) -> list[str]:
        return [f"{item.stem}-{k}{self._ext}" for k in range(self.num_results)]

    def _request(self, model_id: int, item: WorkItem, runner: JobRunner) -> list[tuple[str, int | None]]:
        """The one billable v1 request of a prompt: its image URLs with their seeds."""
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
        if f"{item.stem}.json" not in names:
            return [], set()
        side = folder.read_json(f"{item.stem}.json") or {}
        urls = side.get("urls")
        if side.get("status") not in ("generated", "completed") or not isinstance(urls, list) or not urls:
            return [], set()
        seeds = side.get("seeds") if isinstance(side.get("seeds"), list) else []
        saved = [(str(u), seeds[k] if k < len(seeds) else None) for k, u in enumerate(urls) if u]
        if all(n in names for n in self._names(item)[: len(saved)]):
            return [], set()  # every saved image is there: the earlier response was short, so request again
        tags = side.get("url_tags") if isinstance(side.get("url_tags"), list) else []
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
        from airflow_provider_bria.operators._outputs import check_image

        records = []
        for k, name in enumerate(self._names(item)[: len(urls)]):
            url, seed = urls[k]
            existing = name in names
            if not existing:
                self._download(folder, name, url, None, trusted=trusted is None or url in trusted,
                               check=lambda data, n=name: check_image(data, self.aspect_ratio, name=n,
                                                                      max_pixels=self.max_output_pixels))
            records.append({"uri": folder.uri_of(name), "seed": seed if seed is not None else item.seed,
                            "structured_prompt": None, "request_id": None, "prompt": item.prompt, "index": k,
                            "existing": existing})
        folder.write_json(f"{item.stem}.json", {"status": "completed", "model_id": model_id, "prompt": item.prompt,
                                                 "seed": item.seed, **self._url_sidecar(urls), "outputs": records})
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
                folder.write_json(f"{item.stem}.json", {"status": "url_unusable", "model_id": model_id,
                                                         "prompt": item.prompt, "seed": item.seed})
                names = folder.names()
        urls = self._request(model_id, item, runner)
        folder.write_json(f"{item.stem}.json", {"status": "generated", "model_id": model_id, "prompt": item.prompt,
                                                 "seed": item.seed, **self._url_sidecar(urls),
                                                 "generated_at": time.time()})
        return self._save_images(folder, model_id, item, urls, names)

    def _existing(self, folder: OutputFolder, item: WorkItem) -> list[dict[str, Any]]:
        """Records of a prompt whose images all exist (seeds from its sidecar when it has them)."""
        side = folder.read_json(f"{item.stem}.json") or {}
        seeds = side.get("seeds") if side.get("status") == "completed" and isinstance(side.get("seeds"), list) else []
        base = self._existing_record(folder, item)
        return [{**base, "uri": folder.uri_of(n), "index": k,
                 "seed": seeds[k] if k < len(seeds) and seeds[k] is not None else base["seed"]}
                for k, n in enumerate(self._names(item))]

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Generate every prompt's images that do not exist yet."""
        model_id = as_model_id(self.model_id)
        if self.aspect_ratio is not None and self.aspect_ratio not in contract.ASPECT_RATIOS:
            contract.validate_v2_generation(prompt="-", structured_prompt=None, aspect_ratio=self.aspect_ratio)
        seed = as_optional_seed(self.seed)
        prompts = collect_prompts(self.prompt, self.prompts_file)
        if not prompts:
            raise BriaInputError("BriaGenerateLegacyImagesOperator needs prompt or prompts_file")
        self._check_spend(len(prompts), f"{len(prompts)} prompt(s), one request each")
        items = plan_items(model_id, [(p, None) for p in prompts], kind=self._kind, per_request=1, base_seed=seed,
                           params=self._params())
        folder = self._folder(context, self.output_path, self.output_conn_id)
        context["ti"].xcom_push(key="output_path", value=folder.uri)
        names = folder.names(clean=[n for i in items for n in (*self._names(i), f"{i.stem}.json")])
        existing = {i.stem: self._existing(folder, i) for i in items if all(n in names for n in self._names(i))}
        todo = [i for i in items if i.stem not in existing]
        self.log.info("%d prompt(s) for legacy model %s: %d already generated, %d to request", len(items), model_id,
                      len(existing), len(todo))
        done: dict[str, Any] = {}
        failures: list[dict[str, Any]] = []
        if todo:
            self._check_model(model_id)
            runner = self._runner_for(submit=lambda item: None, finish=lambda item, resp: {},
                                      name_of=lambda item: item.stem + self._ext)
            done, failures = runner.run_each(todo, lambda item: self._generate(folder, model_id, item, runner, names))
        flat = {f"{stem}#{r['index']}": r for stem, recs in {**existing, **done}.items() for r in recs}
        order = [f"{i.stem}#{k}" for i in items for k in range(self.num_results)]
        return self._conclude(context, order, flat, failures, folder.uri)
