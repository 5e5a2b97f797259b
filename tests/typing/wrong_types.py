"""The negative control of test_hook_types.py: each line below must be reported by mypy (a checker that reports
nothing here is not checking)."""

from __future__ import annotations

from typing import Any, assert_type

from airflow_provider_bria.hooks.bria import BriaHook


def untyped_would_be_caught(hook: BriaHook) -> None:
    assert_type(hook.get_model(1), dict[str, Any])  # expected error 1
    hook.get_dataset(1)["no_such_field"]  # expected error 2
    model: int = hook.get_project(1)["project_name"]  # expected error 3
    del model
