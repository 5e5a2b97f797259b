"""After everything ran: no Bria api_token in any component log, local file or task log in S3 (runs last)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_bria.devstack.celery_stack import LOG_BUCKET, CeleryStack

pytestmark = pytest.mark.timeout(300)


def test_no_api_token_in_logs_local_files_or_s3_task_logs(stack: CeleryStack, emulators: dict[str, Any]) -> None:
    tokens = {name: emu.token.encode() for name, emu in emulators.items()}
    local = list(stack.log_files())
    assert any(p.name == "worker-1.log" for p in local)
    leaks = [(str(p), name) for p in local for name, token in tokens.items() if token in p.read_bytes()]
    s3 = stack.s3.client()
    keys = stack.s3.keys(LOG_BUCKET, "airflow/")
    assert keys, "no task log in S3"
    for key in keys:
        body = s3.get_object(Bucket=LOG_BUCKET, Key=key)["Body"].read()
        leaks += [(f"s3://{LOG_BUCKET}/{key}", name) for name, token in tokens.items() if token in body]
    assert leaks == []
