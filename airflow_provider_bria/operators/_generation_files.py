"""File outputs of the generation operators: records of existing outputs, and the sidecars of submitted jobs.

Each output ``<stem><ext>`` has a ``<stem>.json`` sidecar (format: :mod:`._sidecar`). The output file is the
commit marker: a sidecar without its file means "not done", and its request id lets a retry resume the job it
already paid for instead of submitting again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators._generation_base import GenerationBase

if TYPE_CHECKING:
    from airflow_provider_bria.operators._generation_plan import Batch, WorkItem
    from airflow_provider_bria.operators._outputs import OutputFolder
    from airflow_provider_bria.responses import V2Response

#: Sidecars read at once (object stores answer slowly, one request per file).
SIDECAR_READERS = 8

_T = TypeVar("_T")
_R = TypeVar("_R")


def read_parallel(func: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``[func(i) for i in items]``, with up to :data:`SIDECAR_READERS` threads for several items.

    :param func: reads one item's sidecar.
    :param items: the items.
    """
    if len(items) <= 1:
        return [func(i) for i in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(SIDECAR_READERS, len(items)), thread_name_prefix="bria-sidecar") as pool:
        return list(pool.map(func, items))


def saved_request_id(folder: OutputFolder, names: set[str], item: WorkItem) -> str | None:
    """The request id an earlier try saved for ``item`` (``None``: none, or not a valid request id).

    Only the request id is used: a sidecar is data anyone with write access to the folder can change, so its
    ``status_url`` is never contacted (the job is polled on the configured API origin). ``submitted``: an earlier
    try submitted the job; ``completed``: it finished but the file was not committed.

    :param folder: the output folder.
    :param names: the folder's file names.
    :param item: the work item.
    """
    from airflow_provider_bria.hooks._api_generation import request_id_of
    from airflow_provider_bria.operators import _sidecar as sidecar

    if sidecar.name_of(item.stem) not in names:
        return None
    rid = sidecar.read(folder, item.stem).get("request_id")
    if not isinstance(rid, str) or not rid:
        return None
    try:
        return request_id_of(rid)
    except BriaInputError:
        return None


def save_submitted(folder: OutputFolder, item: WorkItem, response: V2Response, model_id: int) -> None:
    """Record a submitted job next to its future output, so a retry resumes it instead of paying again.

    :param folder: the output folder.
    :param item: the work item.
    :param response: the submission response.
    :param model_id: the model.
    """
    from airflow_provider_bria.operators import _sidecar as sidecar
    from airflow_provider_bria.operators._sidecar import SidecarStatus

    sidecar.write(folder, item.stem, SidecarStatus.SUBMITTED, request_id=response.request_id,
                  status_url=response.status_url, model_id=model_id, prompt=item.prompt,
                  input_structured_prompt=item.structured_prompt, seed=item.seed, index=item.index,
                  submitted_at=time.time())


class OutputsMixin(GenerationBase):
    """Generation base for file outputs (``<stem><ext>`` + ``<stem>.json``): existing records and downloads."""

    _ext = ".png"

    def _files(self, item: WorkItem) -> list[str]:
        return [item.stem + self._ext]

    def _existing(self, batch: Batch) -> dict[str, Any]:
        if batch.folder is None:
            return {}
        done = [i for i in batch.items if all(n in batch.names for n in self._files(i))]
        return self._existing_records(batch.folder, done)

    def _existing_record(self, folder: OutputFolder, item: WorkItem) -> Any:
        """The record of an output an earlier try produced (fields from its sidecar when it is completed)."""
        from airflow_provider_bria.operators import _sidecar as sidecar
        from airflow_provider_bria.operators._sidecar import SidecarStatus

        side = sidecar.read_if(folder, item.stem, SidecarStatus.COMPLETED)
        return {
            "uri": folder.uri_of(item.stem + self._ext),
            "seed": side.get("seed", item.seed),
            "structured_prompt": side.get("structured_prompt"),
            "request_id": side.get("request_id"),
            "prompt": item.prompt,
            "index": item.index,
            "existing": True,
        }

    def _existing_records(self, folder: OutputFolder, items: Sequence[WorkItem]) -> dict[str, Any]:
        """Records of the items whose output exists, by stem (sidecars read in parallel).

        :param folder: the output folder.
        :param items: the items whose output exists.
        """
        found = read_parallel(lambda i: self._existing_record(folder, i), items)
        return dict(zip([i.stem for i in items], found, strict=True))

    def _download_or_forget(self, folder: OutputFolder, item: WorkItem, name: str, url: str | None,
                            request_id: str | None,
                            check: Callable[[bytes | None], Any] | None = None) -> tuple[int, bytes | None]:
        """Download an output; if its URL is unusable (4xx), forget the request so a retry submits again."""
        from airflow_provider_bria.operators import _sidecar as sidecar
        from airflow_provider_bria.operators._generation_failures import ItemFailed
        from airflow_provider_bria.operators._sidecar import SidecarStatus

        try:
            return self._download(folder, name, url, request_id, check=check)
        except ItemFailed as err:
            if err.status_code is not None and 400 <= err.status_code < 500:
                sidecar.write(folder, item.stem, SidecarStatus.URL_UNUSABLE, failed_request_id=request_id,
                              prompt=item.prompt, seed=item.seed)
            raise
