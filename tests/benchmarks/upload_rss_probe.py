"""Peak-RSS probe: run one ``BriaUploadImagesOperator.execute`` in a fresh interpreter and report memory.

The connection comes from ``AIRFLOW_CONN_BRIA_DEFAULT`` (set by the caller). Advanced datasets run deferrable,
so the probe covers the worker's part of a bulk upload (quality gate, streamed zip, submission) and stops
when the operator hands the wait to the triggerer. Prints one JSON line::

    {"baseline_rss": bytes before execute, "peak_rss": ru_maxrss after, "seconds": execute time,
     "summary": the operator's return value or {"deferred": true}}

Usage: ``upload_rss_probe.py DATASET_ID SOURCE [STAGING_DIR STAGING_URL]``.
"""

from __future__ import annotations

import json
import sys
import time

import benchlib

from airflow_provider_bria._compat import TaskDeferred
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator


def main() -> None:
    dataset_id, source = int(sys.argv[1]), sys.argv[2]
    staging = {}
    if len(sys.argv) > 4:
        staging = {"staging_path": f"file://{sys.argv[3]}", "staging_url": sys.argv[4], "deferrable": True}
    op = BriaUploadImagesOperator(task_id="upload", dataset_id=dataset_id, source=source, max_concurrency=4,
                                  poll_interval=1.0, hook_params={"retry_delay": 0.2}, **staging)
    import gc

    gc.collect()
    baseline = benchlib.rss_bytes()
    started = time.perf_counter()
    try:
        summary = op.execute(benchlib.context())
    except TaskDeferred:
        summary = {"deferred": True}
    seconds = time.perf_counter() - started
    print(json.dumps({"baseline_rss": baseline, "peak_rss": benchlib.peak_rss_bytes(), "seconds": seconds,
                      "summary": {k: v for k, v in summary.items() if k not in ("image_ids", "skipped")}}))


if __name__ == "__main__":
    main()
