"""The Bria UI plugin and the human review in a real browser, against the real Airflow services.

1. the installed provider registers the plugin (``/api/v2/plugins`` lists its app and UI entries);
2. the gallery of the finished generation run: every thumbnail loaded (``naturalWidth > 0``) and the thumbnails
   are exactly the files in the run's output folders; the "Bria gallery" tab of the DAG run page shows it;
3. the Bria overview (navigation entry) shows the model the pipeline trained, with the run that trained it;
4. a human review through Airflow's own "Required Actions" form: Refine with an instruction (the schema is
   refined, captions regenerated, a second round asks again), then Approve; the dataset is completed and the
   training it schedules starts;
5. an anonymous request to a gallery image is refused.

Screenshots go to ``tests/artifacts/system/``; ``docs/img/ui-gallery.png``, ``ui-overview.png`` and
``ui-review.png`` are written when missing or when ``BRIA_UPDATE_DOCS_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from system_browser import chromium_driver, login, page_text_containing, screenshot
from system_pipeline import GEN, PREP, TRAIN, PipelineResult, wait_until
from system_rest import AirflowClient
from system_stack import ADMIN_USER, REPO, AirflowStack

pytestmark = pytest.mark.timeout(1200)

DOCS_IMG = REPO / "docs" / "img"
GEN_TASK = "generate_images"
INSTRUCTION = "Character's name is Lucy"


def _q(value: str) -> str:
    return quote(value, safe="")


def _shot(browser: Any, folder: Path, name: str, docs: bool = False) -> Path:
    path = screenshot(browser, folder, name)
    if docs and (not (DOCS_IMG / name).exists() or os.environ.get("BRIA_UPDATE_DOCS_SCREENSHOTS") == "1"):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / name)
    return path


def _dump(browser: Any, folder: Path, name: str) -> None:
    (folder / name).write_text(browser.page_source)


def _output_files(client: AirflowClient, run_id: str) -> set[str]:
    """Every image the generation run's mapped task instances wrote, from their output folders on disk."""
    names: set[str] = set()
    for ti in client.task_instances(GEN, run_id):
        if ti["task_id"] != GEN_TASK:
            continue
        uri = client.xcom_value(GEN, run_id, GEN_TASK, "output_path", map_index=ti["map_index"])
        assert uri.startswith("file://"), uri
        names |= {p.name for p in Path(uri.removeprefix("file://")).glob("*.png")}
    return names


def _thumbs(browser: Any, timeout: float = 60) -> list[dict[str, Any]]:
    """Wait until every image of the page finished loading; return each thumbnail's name and natural size."""
    script = (
        "const imgs = Array.from(document.querySelectorAll('img.bria-thumb'));"
        "if (!imgs.every(i => i.complete)) return null;"
        "return imgs.map(i => ({name: i.dataset.name, w: i.naturalWidth, h: i.naturalHeight}));"
    )
    return wait_until(lambda: browser.execute_script(script), timeout=timeout, interval=0.25, what="thumbnails")


def _ti_state(client: AirflowClient, dag_id: str, run_id: str, task_id: str) -> str | None:
    try:
        return client.task_instance(dag_id, run_id, task_id)["state"]
    except Exception:  # noqa: BLE001 - not created yet
        return None


def _wait_state(client: AirflowClient, stack: AirflowStack, dag_id: str, run_id: str, task_id: str,
                states: tuple[str, ...], timeout: float = 300) -> str:
    def check() -> str | None:
        stack.check_alive()
        state = _ti_state(client, dag_id, run_id, task_id)
        if state in ("failed", "upstream_failed") and state not in states:
            tis = {t["task_id"]: t["state"] for t in client.task_instances(dag_id, run_id)}
            raise AssertionError(f"{task_id} is {state}: {tis}")
        return state if state in states else None

    return wait_until(check, timeout=timeout, interval=1.0, what=f"{task_id} in {states}")


def _respond(browser: Any, base: str, run_id: str, task_id: str, option: str, artifacts: Path,
             instruction: str | None = None, shot: str | None = None) -> None:
    """Open the task's Required Actions tab, optionally type the instruction, click the option's button."""
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/dags/{PREP}/runs/{_q(run_id)}/tasks/{task_id}/required_actions")
    page_text_containing(browser, "Review the visual schema")
    page_text_containing(browser, "Sample images and their captions")

    def button(enabled: bool = True) -> Any:
        for b in browser.find_elements(By.TAG_NAME, "button"):
            if b.text.strip() == option and (b.is_enabled() or not enabled):
                return b
        return None

    wait_until(lambda: button(enabled=False), timeout=60, interval=0.25, what=f"the {option} button")
    # every sample image of the review (served by the plugin) loaded
    script = ("const imgs = Array.from(document.images).filter(i => i.src.includes('/bria/review-image/'));"
              "return imgs.length && imgs.every(i => i.complete) ? imgs.map(i => i.naturalWidth) : null;")
    widths = wait_until(lambda: browser.execute_script(script), timeout=60, interval=0.25, what="review images")
    assert all(w > 0 for w in widths), widths
    if instruction is not None:
        field = browser.find_element(By.ID, "element_instruction")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
        field.click()
        field.send_keys(instruction)
    _dump(browser, artifacts, f"review-{task_id}.html")
    if shot:
        first = browser.find_element(By.CSS_SELECTOR, "img[src*='/bria/review-image/']")
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", first)
        time.sleep(0.5)  # let the scrolled view paint
        _shot(browser, artifacts, shot, docs=True)
    target = wait_until(button, timeout=30, interval=0.25, what=f"the {option} button to be enabled")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    target.click()
    page_text_containing(browser, f"{task_id} response successful")


def test_bria_ui_plugin_gallery_overview_and_review(
    chromium: dict[str, str],
    stack: AirflowStack,
    client: AirflowClient,
    pipeline: PipelineResult,
    artifacts: Path,
) -> None:
    from selenium.webdriver.common.by import By

    base = stack.base_url
    gen_run = pipeline.gen_run["dag_run_id"]
    gallery_url = f"{base}/bria/gallery/{GEN}/{_q(gen_run)}"

    # 1. installing the provider is enough: the API server lists the plugin's app and UI entries
    plugins = {p["name"]: p for p in client.get("/api/v2/plugins")["plugins"]}
    assert "bria" in plugins, sorted(plugins)
    assert [a["url_prefix"] for a in plugins["bria"]["fastapi_apps"]] == ["/bria"]
    assert {v["destination"] for v in plugins["bria"]["external_views"]} == {"nav", "dag_run", "task_instance"}

    files = _output_files(client, gen_run)
    assert files, "the generation run wrote no image"

    # 5. anonymous requests are refused (before any browser session exists)
    first = sorted(files)[0]
    ti_map = next(t["map_index"] for t in client.task_instances(GEN, gen_run) if t["task_id"] == GEN_TASK)
    image_url = f"{base}/bria/media/{GEN}/{_q(gen_run)}/{GEN_TASK}/{ti_map}/{_q(first)}"
    assert requests.get(image_url, timeout=30).status_code == 401
    assert requests.get(gallery_url, timeout=30).status_code == 401

    with chromium_driver(chromium["binary"], chromium["driver"]) as browser:
        from selenium.common.exceptions import WebDriverException

        try:
            login(browser, base, ADMIN_USER, stack.password)
        except WebDriverException:  # the UI redirected while the form was being read: once more
            login(browser, base, ADMIN_USER, stack.password)
        page_text_containing(browser, "bria_training")

        # 2. the gallery page: every thumbnail loaded, and they are exactly the files on disk
        browser.get(gallery_url)
        thumbs = _thumbs(browser)
        assert all(t["w"] > 0 and t["h"] > 0 for t in thumbs), thumbs
        assert sorted(t["name"] for t in thumbs) == sorted(files)
        assert len(thumbs) == len(files)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "prompt" in body
        assert "request id" in body
        # a click on a thumbnail shows the image at full size
        browser.find_element(By.CSS_SELECTOR, "img.bria-thumb").click()
        full = wait_until(lambda: browser.execute_script(
            "const i = document.querySelector('.full:target img');"
            "return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.getBoundingClientRect().width] : null;"),
            timeout=30, interval=0.25, what="the full-size image")
        assert full[0] > max(t["w"] for t in thumbs)  # the original, not the thumbnail
        # the same page as a tab of the DAG run page in Airflow's UI
        browser.get(f"{base}/dags/{GEN}/runs/{_q(gen_run)}/plugin/bria-run-gallery")
        frame = wait_until(lambda: browser.find_elements(By.TAG_NAME, "iframe"), timeout=60, what="the iframe")[0]
        browser.switch_to.frame(frame)
        assert sorted(t["name"] for t in _thumbs(browser)) == sorted(files)
        browser.switch_to.default_content()
        _dump(browser, artifacts, "ui-gallery.html")
        _shot(browser, artifacts, "ui-gallery.png", docs=True)
        # a full-size image is served to the logged-in browser
        browser.get(image_url)
        assert browser.execute_script("return document.images.length && document.images[0].naturalWidth") > 0

        # 3. the overview, through the navigation entry: the model the pipeline trained
        train_result = client.xcom_value(TRAIN, pipeline.train_run["dag_run_id"], "train_model", "return_value")
        model_id = train_result["model_id"]
        browser.get(f"{base}/plugin/bria")
        frame = wait_until(lambda: browser.find_elements(By.TAG_NAME, "iframe"), timeout=60, what="the iframe")[0]
        browser.switch_to.frame(frame)
        row = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, f"tr.model[data-model-id='{model_id}']"),
                         timeout=60, what="the model row")[0]
        assert row.find_element(By.CSS_SELECTOR, "td.model-status").text == "Completed"
        assert pipeline.train_run["dag_run_id"] in row.text  # trained by that run
        browser.switch_to.default_content()
        _shot(browser, artifacts, "ui-overview.png", docs=True)

        # 4. the human review: Refine with an instruction, then Approve; training starts
        known_train = {r["dag_run_id"] for r in client.dag_runs(TRAIN)}
        prep = client.trigger(PREP, {"num_demo_images": 6, "human_review": True, "dataset_name": "reviewed-dataset"})
        run_id = prep["dag_run_id"]
        _wait_state(client, stack, PREP, run_id, "review_schema_1", ("awaiting_input", "deferred"))
        schema_1 = client.xcom_value(PREP, run_id, "review_schema_1", "visual_schema")
        _respond(browser, base, run_id, "review_schema_1", "Refine", artifacts, instruction=INSTRUCTION,
                 shot="ui-review.png")
        _wait_state(client, stack, PREP, run_id, "review_schema_2", ("awaiting_input", "deferred"))
        assert client.xcom_value(PREP, run_id, "review_schema_1", "return_value")["instruction"] == INSTRUCTION
        for task in ("refine_schema_1", "apply_schema_1", "regenerate_captions_1"):
            assert _ti_state(client, PREP, run_id, task) == "success", task
        schema_2 = client.xcom_value(PREP, run_id, "review_schema_2", "visual_schema")
        assert schema_2 != schema_1  # the refined schema is what round 2 shows
        _respond(browser, base, run_id, "review_schema_2", "Approve", artifacts)

        final = client.wait_for_run(PREP, run_id, timeout=300, on_poll=stack.check_alive)
        states = {t["task_id"]: t["state"] for t in client.task_instances(PREP, run_id)}
        assert final["state"] == "success", states
        assert states["review_schema_3"] == "skipped"
        assert states["refine_schema_2"] == "skipped"
        assert states["complete_dataset"] == "success"
        published = client.xcom_value(PREP, run_id, "publish_dataset", "return_value")
        train = client.wait_for_new_run(TRAIN, run_type="asset_triggered", known=known_train, timeout=180,
                                        on_poll=stack.check_alive)
        _wait_state(client, stack, TRAIN, train["dag_run_id"], "train_model",
                    ("running", "deferred", "success"), timeout=180)  # training started
        chosen = client.xcom_value(TRAIN, train["dag_run_id"], "resolve_dataset", "return_value")
        assert chosen["dataset_id"] == published["dataset_id"]  # ...on the reviewed dataset
