"""
### Bria example 3/4: scheduled image generation

Runs every day at 06:00 UTC **and** whenever a new model is published on ``bria://models/bria-demo/demo-model``
(by ``bria_training`` or ``bria_retraining``): pick the model → read the prompts (a Param list or a prompts
file, one prompt per line or a JSON list, from any object storage) → split them into batches of
``batch_size`` prompts → one **mapped** generation task per batch (at most ``MAX_PARALLEL_BATCHES`` at a time,
each with bounded concurrency and its share of the plan's rate limit) → PNGs land in an object-storage folder
(``output_folder``; local by default) → a report task lists them.

Which model: the ``model_id`` Param if set, else the model named by the asset event that triggered the run,
else the latest event of the model asset.

Retries and re-runs never pay twice: output names derive from (model, prompt, seed, index), existing outputs
are skipped. Each run date gets its own seed (``YYYYMMDD``) unless the ``seed`` Param is set, so daily runs
produce fresh images while a retried run asks for exactly the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_bria._compat import AssetOrTimeSchedule, CronTriggerTimetable, latest_asset_events
from airflow_provider_bria.assets import bria_model_asset
from airflow_provider_bria.contract import ASPECT_RATIOS
from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator, read_prompts_file

PROJECT = "bria-demo"
MODEL = "demo-model"
MODEL_ASSET = bria_model_asset(PROJECT, MODEL)
#: Mapped generation tasks running at once; each gets requests_per_minute / this share of the plan's limit.
MAX_PARALLEL_BATCHES = 2
DEFAULT_PROMPTS = [
    "a sunrise over rolling hills, in the brand style",
    "a quiet night sky above a lake",
    "a lighthouse on a rocky coast at dusk",
]

#: The Bria connection every task uses (operators get it through default_args).
CONN_ID = "bria_default"

default_args: dict[str, Any] = {
    "owner": "bria-examples",
    "bria_conn_id": CONN_ID,
    "retries": 2,
    "retry_delay": timedelta(seconds=15),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}

with DAG(
    dag_id="bria_scheduled_generation",
    description="Daily (and on every new model) batch generation into object storage",
    schedule=AssetOrTimeSchedule(
        # run_immediately=timedelta(0): unpausing just after '0 6 * * *' waits for the next time instead of
        # starting a "just missed" run at once (False would still run within 10% of the interval).
        timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC", run_immediately=timedelta(0)),
        assets=MODEL_ASSET,
    ),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["bria", "example"],
    doc_md=__doc__,
    params={
        "model_id": Param(None, type=["null", "integer"], description="Model to use. Empty: from the model asset."),
        "prompts": Param(DEFAULT_PROMPTS, type="array", items={"type": "string"}, minItems=1),
        "prompts_file": Param(
            "",
            type="string",
            description="Optional prompts file (local path or object-storage URI); replaces `prompts` when set.",
        ),
        "images_per_prompt": Param(2, type="integer", minimum=1, maximum=8),
        "batch_size": Param(10, type="integer", minimum=1, maximum=200, description="Prompts per mapped task."),
        "aspect_ratio": Param("1:1", enum=list(ASPECT_RATIOS)),
        "seed": Param(None, type=["null", "integer"], minimum=0, description="Empty: the run date (YYYYMMDD)."),
        "output_folder": Param(
            "",
            type="string",
            description="Object-storage folder URI for the PNGs. Empty: "
            "$BRIA_EXAMPLES_DATA/outputs/model-<id>/<run date>.",
        ),
        "requests_per_minute": Param(60, type="number", minimum=1, description="Your Bria plan's rate limit."),
        "max_concurrency": Param(4, type="integer", minimum=1, maximum=32, description="Requests in flight per task."),
    },
) as dag:

    @task(inlets=[MODEL_ASSET])
    def plan(**context: Any) -> list[dict[str, Any]]:
        """Choose the model, prompts, seed and output folder; return one set of operator kwargs per batch."""
        from airflow_provider_bria.assets import model_id_from_asset_events
        from airflow_provider_bria.demo_images import examples_data_root
        from airflow_provider_bria.exceptions import BriaInputError

        params = context["params"]
        model_id, origin = params["model_id"], "the model_id Param"
        if model_id is None:
            model_id = model_id_from_asset_events(context["triggering_asset_events"], MODEL_ASSET)
            origin = "the asset event that triggered this run"
        if model_id is None:
            latest = latest_asset_events(context["inlet_events"][MODEL_ASSET])
            model_id = model_id_from_asset_events(latest)
            origin = f"the latest event of {MODEL_ASSET.uri}"
        if model_id is None:
            raise BriaInputError(
                f"No model to generate with: set the model_id Param or train one first ({MODEL_ASSET.uri})"
            )
        run_after = context["dag_run"].run_after
        seed = params["seed"] if params["seed"] is not None else int(run_after.strftime("%Y%m%d"))
        output = (params["output_folder"] or "").strip()
        if not output:
            output = f"{examples_data_root()}/outputs/model-{model_id}/{run_after:%Y-%m-%d}"
        if "://" not in output:
            output = "file://" + output
        prompts_file = (params["prompts_file"] or "").strip()
        given = read_prompts_file(prompts_file) if prompts_file else params["prompts"]
        # Each prompt once, in order: a repeated prompt would be generated (and paid) twice, concurrently,
        # under the same output names.
        prompts = list(dict.fromkeys(p.strip() for p in given if p and p.strip()))
        if not prompts:
            raise BriaInputError(f"No prompts to generate (prompts file: {prompts_file or 'none'})")
        if len(prompts) < len(given):
            print(f"{len(given) - len(prompts)} empty or repeated prompt(s) skipped")
        size = int(params["batch_size"])
        batches = [prompts[i : i + size] for i in range(0, len(prompts), size)]
        share = float(params["requests_per_minute"]) / min(len(batches), MAX_PARALLEL_BATCHES)
        print(
            f"Model {model_id} (from {origin}); {len(prompts)} prompts in {len(batches)} batch(es); "
            f"seed {seed}; outputs in {output}"
        )
        return [
            {
                "model_id": int(model_id),
                "prompt": batch,
                "num_images_per_prompt": int(params["images_per_prompt"]),
                "aspect_ratio": params["aspect_ratio"],
                "seed": int(seed),
                "output_path": output,
                "requests_per_minute": share,
                "max_concurrency": int(params["max_concurrency"]),
            }
            for batch in batches
        ]

    @task
    def report(batches: Sequence[list[dict[str, Any]]]) -> list[str]:
        """Log every generated image and return their URIs (small: no image bytes in XCom)."""
        uris = []
        for index in range(len(batches)):  # indexed access: one XCom request per mapped task, no probing
            for item in batches[index]:
                print(f"{item.get('uri')}  seed={item.get('seed')}  prompt={item.get('prompt')!r}")
                uris.append(str(item["uri"]))
        return uris

    generate = BriaGenerateImagesOperator.partial(
        task_id="generate_images",
        max_active_tis_per_dagrun=MAX_PARALLEL_BATCHES,
    ).expand_kwargs(plan())

    report(generate.output)
