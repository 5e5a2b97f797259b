"""Projects, datasets, dataset images and bulk upload (contract §3-§4) as methods of :class:`BriaHook`.

The methods live in one module per resource (:mod:`._api_projects`, :mod:`._api_datasets`,
:mod:`._api_images`); this module joins them and keeps the body helpers importable from their old place.
"""

from __future__ import annotations

from airflow_provider_bria.hooks._api_datasets import BriaDatasetApiMixin
from airflow_provider_bria.hooks._api_images import BriaImageApiMixin
from airflow_provider_bria.hooks._api_projects import BriaProjectApiMixin
from airflow_provider_bria.hooks._base import as_dict, as_list, single_match


class BriaDataApiMixin(BriaProjectApiMixin, BriaDatasetApiMixin, BriaImageApiMixin):
    """Project, dataset and image operations. Mixed into :class:`~airflow_provider_bria.hooks.bria.BriaHook`."""


__all__ = ["BriaDataApiMixin", "as_dict", "as_list", "single_match"]
