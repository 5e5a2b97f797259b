"""Default limits of a generated output (operator argument defaults), apart from the download code that applies them.

The generation operators' signatures need these numbers when a DAG file is parsed; the download and image checks
(:mod:`airflow_provider_bria.operators._outputs`, which re-exports them) are imported only when a task runs.
"""

from __future__ import annotations

#: Default byte cap of one downloaded image (operator argument ``max_download_bytes``).
DEFAULT_MAX_IMAGE_BYTES = 50 * 1024 * 1024
#: Default byte cap of one downloaded video (operator argument ``max_download_bytes``).
DEFAULT_MAX_VIDEO_BYTES = 1024 * 1024 * 1024
#: Default pixel budget of one generated image, checked from the header before decoding (``max_output_pixels``).
DEFAULT_MAX_PIXELS = 50_000_000
#: Default overall deadline of one output's download, all attempts included (``download_timeout``, seconds).
DEFAULT_DOWNLOAD_TIMEOUT = 600.0
