"""
### Bria example 1/4: prepare a FIBO training dataset

Project → dataset → visual schema from 5-10 sample images → optional refinement of the schema with a
natural-language instruction → image upload through the quality gate → **human review** of the schema and a
sample of captioned images in the Airflow UI (Approve / Refine with an instruction / Reject, at most
``MAX_REVIEW_ROUNDS`` rounds; Param ``human_review`` turns it off) → caption review → dataset completed → asset
event ``bria://datasets/bria-demo/demo-dataset`` (its extra carries the ids), which schedules
``bria_training``.

Every step is safe to retry: the project and the dataset are found by name before being created, uploads skip
images already in the dataset, completing a completed dataset is a no-op. Re-running the DAG on a dataset that
is already completed skips the preparation; the dataset is published again only if it is not already the latest
event of its asset (so an accidental re-run does not retrain it).

With ``generate_demo_images`` (default) an empty or missing ``image_source`` is first filled with demo images
drawn by Pillow, so the DAG runs without any data of your own. Point ``image_source`` at your own folder, glob
or object-storage URI (``s3://bucket/brand-x/``) to train on real images.

The human review uses Airflow's human-in-the-loop operator (standard provider, Airflow 3.1+; on 3.0 the review
tasks are skipped with ``human_review`` off and fail, without retries, with it on): the task waits
for a response in the UI ("Required Actions"). *Refine* sends the instruction to ``refine_structured_prompt``,
saves the refined schema, regenerates the captions and asks again; *Reject* fails the run and nothing is marked
completed. Without a response within ``REVIEW_TIMEOUT`` the default outcome is *Reject* (the dataset stays a
draft; re-trigger the DAG to review it again).

Nothing here runs at parse time: no API call, no connection or Variable lookup, no heavy import.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param, chain, task

from airflow_provider_bria._compat import (
    AIRFLOW_VERSION,
    AirflowFailException,
    AirflowSkipException,
    SkipMixin,
    has_hitl,
    hitl_operator,
    hitl_timeout,
    latest_asset_events,
    multiple_outputs,
)
from airflow_provider_bria.assets import bria_dataset_asset
from airflow_provider_bria.contract import IpMedium, IpType
from airflow_provider_bria.operators.captions import (
    BriaGenerateVisualSchemaOperator,
    BriaRefineStructuredPromptOperator,
    BriaRegenerateCaptionsOperator,
)
from airflow_provider_bria.operators.dataset import BriaCreateDatasetOperator, BriaUpdateDatasetOperator
from airflow_provider_bria.operators.project import BriaCreateProjectOperator
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

PROJECT = "bria-demo"
DATASET = "demo-dataset"
#: Static at parse time (asset URIs cannot depend on Params): the event's extra names the real dataset.
DATASET_ASSET = bria_dataset_asset(PROJECT, DATASET)

#: The Bria connection every task uses (operators get it through default_args).
CONN_ID = "bria_default"

#: Review rounds at most: rounds 1..N-1 offer Approve / Refine / Reject, the last one Approve / Reject.
MAX_REVIEW_ROUNDS = 3
#: How long a review waits for a human; then the default outcome (Reject) applies.
REVIEW_TIMEOUT = timedelta(hours=24)
#: Images (with their captions) shown in the review.
REVIEW_SAMPLE = 6
#: Source files hashed at most to find the local copies of the sampled dataset images.
MAX_REVIEW_SCAN = 500
APPROVE, REFINE, REJECT = "Approve", "Refine", "Reject"


class SchemaReviewOperator(hitl_operator(), SkipMixin):
    """Human review of the dataset's visual schema and a sample of captioned images (one round).

    Shows the schema and up to ``REVIEW_SAMPLE`` images with their captions (the images are served by the Bria
    UI plugin from the image source, so no Bria URL appears in the page). *Approve* skips the refinement that
    follows this round; *Refine* returns the instruction for the next tasks; *Reject* fails the task, so the run
    stops before the dataset is completed. Skipped when the Param ``human_review`` is off. On Airflow 3.0 (no
    HITL) the rounds are still tasks (same DAG shape): skipped when ``human_review`` is off, failed (no retry)
    when it is on.

    :param review_round: this round's number (1-based).
    :param last_round: whether *Refine* is still offered.
    """

    inherits_from_skipmixin = True

    def __init__(self, *, review_round: int, last_round: bool, **kwargs: Any) -> None:
        options = [APPROVE, REJECT] if last_round else [APPROVE, REFINE, REJECT]
        kwargs.pop("params", None)  # the DAG's Params (injected by default args) are not form fields
        params = {} if last_round else {
            "instruction": Param(None, type=["null", "string"], title="Refine instruction",
                                 description="With Refine: what to change in the schema, e.g. 'Character's name is "
                                 "Lucy'."),
        }
        super().__init__(
            subject=f"Review the visual schema of the dataset (round {review_round} of {MAX_REVIEW_ROUNDS})",
            options=options, defaults=[REJECT], params=params, **hitl_timeout(REVIEW_TIMEOUT), **kwargs,
        )
        self.review_round = review_round
        self.form_fields = sorted(params)

    def _form_params_only(self) -> None:
        """Keep only this round's form fields in ``params``: 3.1's HITL operator also shows (and validates) the
        DAG's Params; 3.2+ filters them itself (then this changes nothing)."""
        from airflow.sdk.definitions.param import ParamsDict

        if sorted(self.params) != self.form_fields:
            self.params = ParamsDict({k: self.params.get_param(k) for k in self.form_fields})

    def execute(self, context: Any) -> Any:
        """Build the review (schema, sampled images and captions), then wait for the human response."""
        if not context["params"].get("human_review", True):
            raise AirflowSkipException("human_review is off: the dataset is completed without a human review")
        if not has_hitl():
            raise AirflowFailException(f"the human review needs Airflow 3.1+ (HITL); set human_review to false "
                                       f"(this is Airflow {AIRFLOW_VERSION})")
        from airflow_provider_bria.hooks.bria import BriaHook

        self._form_params_only()
        ti = context["ti"]
        dataset_id = int(ti.xcom_pull(task_ids="create_dataset"))
        hook = BriaHook(CONN_ID)
        schema = hook.get_dataset(dataset_id, max_images=1).get("visual_schema") or ""
        images = hook.list_images(dataset_id)[:REVIEW_SAMPLE]
        folder, local = _local_copies(str(ti.xcom_pull(task_ids="prepare_images", key="source")), images)
        ti.xcom_push(key="review_images", value={"folder": folder, "names": sorted(set(local.values()))})
        ti.xcom_push(key="visual_schema", value=schema)
        self.body = _review_body(context, schema, images, local, self.review_round)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Act on the response: Approve (skip the refinement), Refine (pass the instruction on), Reject (fail)."""
        self._form_params_only()
        ret = super().execute_complete(context=context, event=event)
        chosen = ret["chosen_options"][0]
        who = (ret.get("responded_by_user") or {}).get("name") if isinstance(ret.get("responded_by_user"), dict) \
            else ret.get("responded_by_user")
        instruction = str((ret.get("params_input") or {}).get("instruction") or "").strip()
        dataset_id = context["ti"].xcom_pull(task_ids="create_dataset")
        if chosen == REJECT:
            raise AirflowFailException(f"Review round {self.review_round}: rejected by {who or 'the timeout'}; "
                                       f"dataset {dataset_id} stays a draft and nothing is published")
        if chosen == REFINE and not instruction:
            raise AirflowFailException(f"Review round {self.review_round}: Refine needs an instruction; "
                                       f"dataset {dataset_id} stays a draft")
        if chosen == APPROVE:
            self.log.info("Approved by %s in round %d", who, self.review_round)
            self.skip(ti=context["ti"], tasks=[t for t in context["task"].get_direct_relatives(upstream=False)
                                               if t.task_id.startswith("refine_schema_")])
        else:
            self.log.info("Refine requested by %s in round %d: %r", who, self.review_round, instruction)
        schema = context["ti"].xcom_pull(task_ids=self.task_id, key="visual_schema")
        return {"outcome": chosen.lower(), "instruction": instruction, "visual_schema": schema,
                "round": self.review_round, "by": who}


def _local_copies(source: str, images: list[dict[str, Any]]) -> tuple[str, dict[str, str]]:
    """The folder of the source images and ``{image_name: local file name}`` of the sampled dataset images.

    Uploaded names end with the first 12 hex digits of the content's SHA-256 (the upload's stable names), so
    local files are matched by content, hashing at most ``MAX_REVIEW_SCAN`` of them.
    """
    import hashlib

    from airflow_provider_bria.operators._outputs import OutputFolder
    from airflow_provider_bria.operators._quality_gate import key_from_image_name

    base = source.rsplit("/", 1)[0] if any(c in source for c in "*?[") else source
    folder = OutputFolder(base)
    wanted = {key_from_image_name(img.get("image_name")): str(img.get("image_name")) for img in images}
    wanted.pop(None, None)
    found: dict[str, str] = {}
    for name in sorted(folder.names())[:MAX_REVIEW_SCAN]:
        if len(found) == len(wanted):
            break
        if name.rsplit(".", 1)[-1].lower() not in ("png", "jpg", "jpeg", "webp"):
            continue
        with folder.child(name).open("rb") as fh:
            key = hashlib.sha256(fh.read()).hexdigest()[:12]
        if key in wanted:
            found[wanted[key]] = name
    return folder.uri, found


def _review_body(context: Any, schema: str, images: list[dict[str, Any]], local: dict[str, str],
                 review_round: int) -> str:
    """The review's Markdown: the schema, then a table of sample images and captions."""
    import json
    from urllib.parse import quote, urlsplit

    from airflow_provider_bria._compat import conf

    try:
        pretty = json.dumps(json.loads(schema), indent=1, ensure_ascii=False) if schema else "(no visual schema)"
    except ValueError:
        pretty = schema
    root = urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    ti = context["ti"]
    base = f"{root}/bria/review-image/{quote(ti.dag_id, safe='')}/{quote(ti.run_id, safe='')}/{quote(ti.task_id)}"
    rows = []
    for img in images:
        name = str(img.get("image_name"))
        caption = " ".join(str(img.get("caption") or "(no caption yet)").split()).replace("|", "\\|")[:400]
        pic = f"![{name}]({base}/{quote(local[name])}?thumb=1)" if name in local else "(image not found locally)"
        rows.append(f"| {pic} | `{name}` {caption} |")
    lines = [
        f"Round {review_round} of {MAX_REVIEW_ROUNDS}. **Approve** completes the dataset (training follows), "
        "**Refine** sends your instruction to Bria's `refine_structured_prompt`, saves the refined schema, "
        "regenerates the captions and asks again; **Reject** stops the run (nothing is marked completed). "
        f"Without an answer in {REVIEW_TIMEOUT} the review counts as rejected.",
        "", "### Visual schema", "", "```json", pretty[:6000], "```", "",
        f"### Sample images and their captions ({len(images)})", "", "| image | caption |", "|---|---|", *rows,
    ]
    return "\n".join(lines)


default_args: dict[str, Any] = {
    "owner": "bria-examples",
    "bria_conn_id": CONN_ID,
    "retries": 2,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=2),
}

with DAG(
    dag_id="bria_dataset_preparation",
    description="Project, dataset, visual schema, quality-gated upload, caption review, completed dataset",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["bria", "example"],
    doc_md=__doc__,
    params={
        "project_name": Param(PROJECT, type="string", minLength=1, description="Bria project (natural key)."),
        "ip_medium": Param(IpMedium.ILLUSTRATION.value, enum=[m.value for m in IpMedium]),
        "ip_type": Param(IpType.STYLIZED_SCENE.value, enum=[t.value for t in IpType]),
        "ip_name": Param(None, type=["null", "string"], description="Required for defined_character (1-3 words)."),
        "ip_description": Param(
            None, type=["null", "string"], description="Required for defined_character and object_variants."
        ),
        "dataset_name": Param(DATASET, type="string", minLength=1, description="Dataset name within the project."),
        "image_source": Param(
            "",
            type="string",
            description="Folder, glob, or object-storage URI of the training images. Empty: "
            "$BRIA_EXAMPLES_DATA (default $AIRFLOW_HOME/bria_examples)/images.",
        ),
        "generate_demo_images": Param(True, type="boolean", description="Draw demo images if the source is empty."),
        "num_demo_images": Param(8, type="integer", minimum=5, maximum=200),
        "schema_sample_size": Param(
            5, type="integer", minimum=5, maximum=10, description="Images sent to generate_visual_schema."
        ),
        "refine_instruction": Param(
            "",
            type="string",
            description="Optional natural-language edit of the visual schema, e.g. 'emphasise the pastel palette'.",
        ),
        "human_review": Param(
            True,
            type="boolean",
            description="Ask a human to approve, refine or reject the visual schema and captions in the Airflow UI "
            f"before the dataset is completed (timeout {REVIEW_TIMEOUT}: rejected). Off: no review.",
        ),
        "caption_overrides": Param(
            {},
            type="object",
            description="Caption review: {image_name: caption} applied before the dataset is completed.",
        ),
    },
) as dag:

    @task(multiple_outputs=True)
    def settings(**context: Any) -> dict[str, Any]:
        """Validate the run's Params once and resolve defaults (typed values for the operators below)."""
        from airflow_provider_bria.demo_images import examples_data_root

        params = context["params"]
        source = (params["image_source"] or "").strip() or f"{examples_data_root()}/images"
        return multiple_outputs({
            "image_source": source,
            "ip_name": params["ip_name"] or None,
            "ip_description": params["ip_description"] or None,
        })

    @task.branch
    def route(dataset_id: int) -> str:
        """Prepare a draft dataset; a completed one (an earlier run finished it) is only published again."""
        from airflow_provider_bria.hooks.bria import BriaHook

        dataset = BriaHook(CONN_ID).get_dataset(int(dataset_id), max_images=1)
        if dataset.get("status") == "completed":
            print(f"Dataset {dataset_id} is already completed: nothing to prepare, publishing it again")
            return "publish_dataset"
        return "prepare_images"

    @task(multiple_outputs=True)
    def prepare_images(source: str, **context: Any) -> dict[str, Any]:
        """List the source images (drawing demo images into an empty source) and pick the schema samples."""
        from airflow_provider_bria.demo_images import ensure_demo_images
        from airflow_provider_bria.exceptions import BriaInputError

        params = context["params"]
        images = ensure_demo_images(
            source, int(params["num_demo_images"]), generate=bool(params["generate_demo_images"])
        )
        sample_size = int(params["schema_sample_size"])
        if len(images) < sample_size:
            raise BriaInputError(
                f"{source!r} holds {len(images)} images; at least {sample_size} are needed for the visual schema "
                "(set generate_demo_images=true to draw demo images into an empty folder)"
            )
        # Spread the samples over the whole set rather than taking the first few.
        step = len(images) / sample_size
        samples = [images[int(i * step)] for i in range(sample_size)]
        print(f"{len(images)} images in {source}; schema samples: {samples}")
        return {"source": source, "samples": samples, "count": len(images)}

    @task.branch
    def choose_schema_path(**context: Any) -> str:
        """Refine the visual schema only when an instruction was given."""
        return "refine_visual_schema" if context["params"]["refine_instruction"].strip() else "schema_ready"

    @task
    def review_captions(dataset_id: int, **context: Any) -> dict[str, Any]:
        """Caption review hook point: apply ``caption_overrides`` and check every image has a caption.

        Replace this task with your own review (a QA script, a human-in-the-loop approval...) as needed.
        """
        import json

        from airflow_provider_bria.exceptions import BriaInputError
        from airflow_provider_bria.hooks.bria import BriaHook

        hook = BriaHook(CONN_ID)
        overrides: dict[str, Any] = dict(context["params"]["caption_overrides"] or {})
        images = hook.list_images(int(dataset_id))
        by_name = {img.get("image_name"): img for img in images}
        unknown = sorted(set(overrides) - set(by_name))
        if unknown:
            raise BriaInputError(f"caption_overrides names images not in dataset {dataset_id}: {unknown}")
        for name, caption in overrides.items():
            img = by_name[name]
            text = caption if isinstance(caption, str) else json.dumps(caption)  # FIBO captions are JSON text
            if img.get("caption") != text:
                hook.update_image_caption(int(dataset_id), int(img["id"]), text)
                print(f"caption of {name} (image {img['id']}) replaced")
        missing = [
            img.get("image_name") for img in images if not img.get("caption") and img.get("image_name") not in overrides
        ]
        for img in images[:5]:
            print(f"{img.get('image_name')}: {str(img.get('caption'))[:120]}")
        if missing:
            raise BriaInputError(
                f"{len(missing)} images have no caption yet: {missing[:10]} (uploaded before the visual schema? "
                "regenerate them with BriaRegenerateCaptionsOperator, or set them in caption_overrides)"
            )
        return {"dataset_id": int(dataset_id), "images": len(images), "captions_overridden": len(overrides)}

    @task(outlets=[DATASET_ASSET], inlets=[DATASET_ASSET], trigger_rule="none_failed_min_one_success")
    def publish_dataset(project_id: int, dataset_id: int, **context: Any) -> dict[str, Any]:
        """Emit the dataset asset event; its extra tells ``bria_training`` which dataset to train.

        Skipped when the latest event already names this dataset (a re-run of a published dataset must not
        retrain it and move the model asset back to its model).
        """
        from airflow_provider_bria._compat import AirflowSkipException
        from airflow_provider_bria.exceptions import BriaInputError
        from airflow_provider_bria.hooks.bria import BriaHook

        dataset = BriaHook(CONN_ID).get_dataset(int(dataset_id), max_images=1)
        if dataset.get("status") != "completed":
            raise BriaInputError(f"Dataset {dataset_id} is {dataset.get('status')!r}, not completed: not publishing")
        latest = latest_asset_events(context["inlet_events"][DATASET_ASSET])
        if latest and (latest[0].extra or {}).get("dataset_id") == int(dataset_id):
            raise AirflowSkipException(f"Dataset {dataset_id} is already the latest {DATASET_ASSET.uri} event")
        params = context["params"]
        extra = {
            "project_id": int(project_id),
            "dataset_id": int(dataset_id),
            "project_name": params["project_name"],
            "dataset_name": dataset.get("name", params["dataset_name"]),
            "images": dataset.get("images_count"),
        }
        extra = {key: value for key, value in extra.items() if value is not None}
        context["outlet_events"][DATASET_ASSET].extra = extra
        return extra

    cfg = settings()

    create_project = BriaCreateProjectOperator(
        task_id="create_project",
        project_name="{{ params.project_name }}",
        ip_medium="{{ params.ip_medium }}",
        ip_type="{{ params.ip_type }}",
        ip_name=cfg["ip_name"],
        ip_description=cfg["ip_description"],
    )

    create_dataset = BriaCreateDatasetOperator(
        task_id="create_dataset",
        project_id=create_project.output,
        name="{{ params.dataset_name }}",
        upload_type="basic",
    )

    images = prepare_images(cfg["image_source"])

    visual_schema = BriaGenerateVisualSchemaOperator(
        task_id="generate_visual_schema",
        images=images["samples"],
        dataset_id=create_dataset.output,
        apply_to_dataset=True,
    )

    refine = BriaRefineStructuredPromptOperator(
        task_id="refine_visual_schema",
        dataset_id=create_dataset.output,
        structured_prompt=visual_schema.output,
        instruction="{{ params.refine_instruction }}",
    )

    apply_refined = BriaUpdateDatasetOperator(
        task_id="apply_refined_schema",
        dataset_id=create_dataset.output,
        visual_schema=refine.output,
    )

    # Join of the two schema paths: runs when either succeeded, is skipped when the whole preparation is.
    schema_ready = EmptyOperator(task_id="schema_ready", trigger_rule="none_failed_min_one_success")

    upload = BriaUploadImagesOperator(
        task_id="upload_images",
        dataset_id=create_dataset.output,
        source=images["source"],
    )

    # Human review rounds: review_schema_1 -> (Refine) refine_schema_1 -> apply_schema_1 -> regenerate_captions_1
    # -> review_schema_2 ... An Approve skips the rest of the rounds; a Reject fails the run here.
    reviews: list[SchemaReviewOperator] = []
    previous: Any = upload
    for n in range(1, MAX_REVIEW_ROUNDS + 1):
        review_n = SchemaReviewOperator(task_id=f"review_schema_{n}", review_round=n,
                                        last_round=n == MAX_REVIEW_ROUNDS)
        chain(previous, review_n)
        reviews.append(review_n)
        if n == MAX_REVIEW_ROUNDS:
            break
        refine_n = BriaRefineStructuredPromptOperator(
            task_id=f"refine_schema_{n}",
            dataset_id=create_dataset.output,
            structured_prompt=f"{{{{ ti.xcom_pull(task_ids='review_schema_{n}')['visual_schema'] }}}}",
            instruction=f"{{{{ ti.xcom_pull(task_ids='review_schema_{n}')['instruction'] }}}}",
        )
        apply_n = BriaUpdateDatasetOperator(
            task_id=f"apply_schema_{n}", dataset_id=create_dataset.output, visual_schema=refine_n.output
        )
        regenerate_n = BriaRegenerateCaptionsOperator(
            task_id=f"regenerate_captions_{n}", dataset_id=create_dataset.output, poll_interval=2.0
        )
        chain(review_n, refine_n, apply_n, regenerate_n)
        previous = regenerate_n

    review = review_captions.override(trigger_rule="none_failed_min_one_success")(create_dataset.output)

    complete = BriaUpdateDatasetOperator(
        task_id="complete_dataset",
        dataset_id=create_dataset.output,
        status="completed",
    )

    published = publish_dataset(create_project.output, create_dataset.output)

    routing = route(create_dataset.output)
    branch = choose_schema_path()
    chain(routing, [images, published])
    chain(visual_schema, branch, [refine, schema_ready])
    chain(refine, apply_refined, schema_ready, upload)
    chain([upload, *reviews], review, complete, published)
