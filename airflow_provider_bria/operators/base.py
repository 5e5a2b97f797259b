"""Shared base class of every Bria operator: connection id, lazily built hook, hook parameters."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_bria.hooks.bria import BriaHook


class BriaBaseOperator(BaseOperator):
    """Base class of Bria operators.

    :param bria_conn_id: Airflow connection id of type ``bria`` (templated).
    :param hook_params: extra keyword arguments for :class:`~airflow_provider_bria.hooks.bria.BriaHook`
        (``timeout``, ``retry_limit``, ``retry_delay``...).
    """

    template_fields: Sequence[str] = ("bria_conn_id",)
    ui_color = "#e8e0ff"

    def __init__(
        self,
        *,
        bria_conn_id: str = BriaHook.default_conn_name,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bria_conn_id = bria_conn_id
        self.hook_params = hook_params or {}

    @cached_property
    def hook(self) -> BriaHook:
        """The hook, built on first use (no I/O at construction)."""
        return BriaHook(bria_conn_id=self.bria_conn_id, **self.hook_params)
