"""The Airflow UI in a real browser: log in, open the training run, check task states and the Bria extra link.

Screenshots are saved to ``tests/artifacts/system/``. ``docs/img/ui-training-run.png`` is written when it is
missing or when ``BRIA_UPDATE_DOCS_SCREENSHOTS=1`` (so a normal run does not rewrite a tracked file).
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
from pathlib import Path

import pytest
from system_browser import (
    chromium_driver,
    extra_link_href,
    login,
    page_text_containing,
    screenshot,
    task_table_states,
)
from system_pipeline import TRAIN, TRAIN_TASK, PipelineResult
from system_rest import AirflowClient
from system_stack import ADMIN_USER, REPO, AirflowStack

from airflow_provider_bria.contract import DEFAULT_CONSOLE_URL
from airflow_provider_bria.links.bria import model_console_url

pytestmark = pytest.mark.timeout(900)

DOCS_SCREENSHOT = REPO / "docs" / "img" / "ui-training-run.png"


def test_training_run_in_the_ui(
    chromium: dict[str, str],
    stack: AirflowStack,
    client: AirflowClient,
    pipeline: PipelineResult,
    artifacts: Path,
) -> None:
    from selenium.webdriver.common.by import By

    run_id = pipeline.train_run["dag_run_id"]
    result = client.xcom_value(TRAIN, run_id, TRAIN_TASK, "return_value")
    expected_link = model_console_url(DEFAULT_CONSOLE_URL, result["project_id"], result["model_id"])
    run_url = f"{stack.base_url}/dags/{TRAIN}/runs/{urllib.parse.quote(run_id, safe='')}"

    with chromium_driver(chromium["binary"], chromium["driver"]) as browser:
        # An anonymous visit lands on the login form.
        browser.get(run_url)
        login(browser, stack.base_url, ADMIN_USER, stack.password)
        page_text_containing(browser, "bria_training")  # the home page lists the DAGs once rendered
        screenshot(browser, artifacts, "ui-home.png")

        browser.get(run_url)
        states = task_table_states(browser, expected_rows=3)
        assert states == {"resolve_dataset": "success", "create_model": "success", "train_model": "success"}
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Asset Triggered" in body  # the run type: scheduled by the dataset asset
        screenshot(browser, artifacts, "ui-training-run.png")

        browser.get(f"{run_url}/tasks/{TRAIN_TASK}/details")
        href = extra_link_href(browser, "Bria Model")
        assert href == expected_link
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "Extra Links" in text
        assert "BriaStartTrainingOperator" in text
        details = screenshot(browser, artifacts, "ui-training-task-details.png")

        browser.get(f"{run_url}/tasks/{TRAIN_TASK}")
        # The task log (rendered by the UI) shows the deferral and the trigger's polling in the triggerer.
        page_text_containing(browser, "Deferring until model")
        # The log viewer may render its lines in more than one pass: wait for the trigger's line too.
        page_text_containing(browser, f"Model {result['model_id']} is InProgress")
        screenshot(browser, artifacts, "ui-training-task-log.png")

    if not DOCS_SCREENSHOT.exists() or os.environ.get("BRIA_UPDATE_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(details, DOCS_SCREENSHOT)

