"""Turning prompts into deterministic work items: seeds and output names that are the same on every try.

An output's name is derived from what decides the image: the model, the prompt and/or structured prompt, the
seed, the index of the image for that prompt, and the generation parameters that were set explicitly. The
same request always gets the same name, so a retried (or re-run) task finds the files it already produced
and does not pay for them again, and mapped task instances never collide (their prompts differ).

When no ``seed`` is given, each image gets a seed derived from ``(model, prompt, structured prompt, index)``;
with a ``seed``, image ``i`` of a prompt uses ``seed + i``. Either way a rerun asks Bria for the same image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.exceptions import BriaInputError

if TYPE_CHECKING:
    from airflow_provider_bria.operators._outputs import OutputFolder

log = logging.getLogger(__name__)

SLUG_MAX = 40
HASH_LEN = 12
SEED_MODULUS = 2**31 - 1
#: Upper bound of images per prompt in one task (a guard against typos such as 1000 instead of 10).
MAX_IMAGES_PER_PROMPT = 100


@dataclass(frozen=True)
class WorkItem:
    """One output to produce.

    :param stem: the output name without extension (``<slug>-<hash>``).
    :param index: index of this output for its prompt (``0..n-1``).
    :param seed: the seed sent to Bria.
    :param prompt: the text prompt, if any.
    :param structured_prompt: the input structured prompt (JSON string), if any.
    :param extra: JSON-safe per-item request fields (e.g. the image of a video request).
    """

    stem: str
    index: int
    seed: int | None
    prompt: str | None = None
    structured_prompt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        """A short description for logs and failure lists."""
        source = (self.extra or {}).get("source")
        if source and not self.prompt:
            return f"image {source!r} (seed {self.seed})"
        text = self.prompt if self.prompt else "<structured prompt>"
        if len(text) > 60:
            text = text[:57] + "..."
        return f"{text!r} #{self.index} (seed {self.seed})"

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (for deferral kwargs)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkItem:
        """Rebuild from :meth:`to_json` output.

        :param data: the dict.
        """
        return cls(
            stem=str(data["stem"]),
            index=int(data["index"]),
            seed=None if data.get("seed") is None else int(data["seed"]),
            prompt=data.get("prompt"),
            structured_prompt=data.get("structured_prompt"),
            extra=dict(data.get("extra") or {}),
        )


def slugify(text: str | None, *, fallback: str = "prompt", max_len: int = SLUG_MAX) -> str:
    """A lowercase ASCII slug of ``text`` (``"A red Car!"`` -> ``"a-red-car"``), at most ``max_len`` chars.

    :param text: the text.
    :param fallback: returned when nothing ASCII-alphanumeric is left.
    :param max_len: maximum length.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", str(text or "").lower()).strip("-")
    slug = slug[:max_len].rstrip("-")
    return slug or fallback


def digest(*parts: Any) -> str:
    """A stable SHA-256 hex digest of JSON-serialisable parts.

    :param parts: the values.
    """
    blob = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def derive_seed(model_id: int, prompt: str | None, structured_prompt: str | None, index: int, kind: str) -> int:
    """A deterministic seed for one output when the user gave none.

    :param model_id: the model.
    :param prompt: the prompt.
    :param structured_prompt: the structured prompt.
    :param index: the output index for this prompt.
    :param kind: what is generated (``image``, ``legacy``, ``video``...), so kinds do not share seeds.
    """
    return int(digest("seed", kind, model_id, prompt, structured_prompt, index)[:15], 16) % SEED_MODULUS


def output_stem(
    model_id: int,
    *,
    kind: str,
    prompt: str | None,
    structured_prompt: str | None,
    seed: int | None,
    index: int,
    params: Mapping[str, Any] | None = None,
    slug_source: str | None = None,
) -> str:
    """The deterministic output name (without extension): ``<slug(prompt)[:40]>-<sha[:12]>``.

    :param model_id: the model.
    :param kind: what is generated (part of the hash).
    :param prompt: the prompt.
    :param structured_prompt: the structured prompt.
    :param seed: the seed.
    :param index: the output index for this prompt.
    :param params: the generation parameters that were set (``None`` values are ignored).
    :param slug_source: text for the readable part (default: the prompt, else ``structured``).
    """
    used = {k: v for k, v in (params or {}).items() if v is not None}
    sha = digest(kind, model_id, prompt, structured_prompt, seed, index, used)[:HASH_LEN]
    source = slug_source if slug_source is not None else prompt
    return f"{slugify(source, fallback='structured' if structured_prompt else kind)}-{sha}"


def as_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Coerce an integer argument that may come from a template (``"12"``) and check its range.

    :param value: the value.
    :param name: the argument name, for the message.
    :param minimum: inclusive minimum.
    :param maximum: inclusive maximum.
    """
    if isinstance(value, bool):
        raise BriaInputError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value)
    ):
        number = int(value)
    else:
        raise BriaInputError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and number < minimum:
        raise BriaInputError(f"{name} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise BriaInputError(f"{name} must be <= {maximum}, got {number}")
    return number


def as_model_id(value: Any) -> int:
    """A model id from an int or a rendered template string.

    :param value: the id.
    """
    return as_int(value, "model_id", minimum=1)


def as_optional_seed(value: Any) -> int | None:
    """A seed (any integer: Bria's spec states no range) or ``None``; rendered templates (``"42"``,
    ``""``/``"None"``) accepted.

    :param value: the seed.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "none", "null")):
        return None
    return as_int(value, "seed")


def _text_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        values: Sequence[Any] = [value]
    elif isinstance(value, (list, tuple)):
        values = value
    else:
        raise BriaInputError(f"{name} must be a string or a list of strings, got {type(value).__name__}")
    out = []
    for i, item in enumerate(values):
        if not isinstance(item, str) or not item.strip():
            raise BriaInputError(f"{name}[{i}] must be a non-empty string, got {item!r}")
        out.append(item.strip())
    return out


def parse_prompts_text(text: str, *, source: str = "prompts_file") -> list[str]:
    """Parse a prompts file: a JSON list of strings, or one prompt per line (blank and ``#`` lines skipped).

    :param text: the file content.
    :param source: where it came from, for messages.
    """
    stripped = text.lstrip("\ufeff").strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except ValueError as err:
            raise BriaInputError(f"{source} looks like JSON but does not parse: {err}") from None
        return _text_list(data, source)
    return [line.strip() for line in stripped.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_prompts_file(location: str, *, conn_id: str | None = None) -> list[str]:
    """Read a prompts file from a local path or any ``ObjectStoragePath`` URI.

    Public as :func:`airflow_provider_bria.operators.generation.read_prompts_file` (the format is the one of
    the operators' ``prompts_file``: one prompt per line, ``#`` comments, or a JSON list), for DAGs that plan
    batches themselves.

    :param location: the path or URI.
    :param conn_id: Airflow connection of the store, when not in the URI.
    :return: the prompts, in file order (empty for a file with no prompt).
    :raises BriaInputError: the file is missing, not UTF-8, or a malformed JSON list.
    """
    from airflow_provider_bria._compat import object_storage_path
    from airflow_provider_bria.operators._outputs import to_uri

    path = object_storage_path(to_uri(location), conn_id=conn_id)
    try:
        with path.fs.open(path.path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise BriaInputError(f"prompts_file {location!r} does not exist") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BriaInputError(f"prompts_file {location!r} is not UTF-8 text") from None
    prompts = parse_prompts_text(text, source=f"prompts_file {location!r}")
    log.info("Read %d prompt(s) from %s", len(prompts), location)
    return prompts


def collect_prompts(prompt: Any, prompts_file: str | None, *, conn_id: str | None = None) -> list[str]:
    """All prompts of a task: ``prompt`` (a string or list) then the file's, duplicates dropped (in order).

    :param prompt: a prompt or a list of prompts.
    :param prompts_file: optional path/URI of a prompts file.
    :param conn_id: Airflow connection of the prompts file's store.
    """
    prompts = _text_list(prompt, "prompt")
    if prompts_file is not None and str(prompts_file).strip():
        prompts += read_prompts_file(str(prompts_file).strip(), conn_id=conn_id)
    unique = list(dict.fromkeys(prompts))
    if len(unique) != len(prompts):
        log.warning("Dropped %d duplicate prompt(s); use num_images_per_prompt for more images of one prompt",
                    len(prompts) - len(unique))
    return unique


def pair_prompts(prompts: list[str], structured_prompt: Any) -> list[tuple[str | None, str | None]]:
    """Pair prompts with structured prompts into (prompt, structured_prompt) requests.

    * no structured prompt: one request per prompt;
    * one structured prompt: refine it with each prompt, or recreate it alone when there are no prompts;
    * a list of structured prompts: recreate each (no prompts), or refine pairwise (same length as prompts).

    :param prompts: the prompts.
    :param structured_prompt: ``None``, a JSON string, or a list of JSON strings.
    """
    if structured_prompt is None or (isinstance(structured_prompt, str) and not structured_prompt.strip()):
        if not prompts:
            raise BriaInputError("Give prompt, prompts_file or structured_prompt: there is nothing to generate")
        return [(p, None) for p in prompts]
    if isinstance(structured_prompt, (dict, list)) and not (
        isinstance(structured_prompt, list) and all(isinstance(s, str) for s in structured_prompt)
    ):
        if isinstance(structured_prompt, dict):
            structured_prompt = json.dumps(structured_prompt)
        else:
            structured_prompt = [json.dumps(s) if isinstance(s, dict) else s for s in structured_prompt]
    if isinstance(structured_prompt, str):
        return [(p, structured_prompt) for p in prompts] if prompts else [(None, structured_prompt)]
    structured = _text_list(structured_prompt, "structured_prompt")
    if not prompts:
        return [(None, s) for s in dict.fromkeys(structured)]
    if len(structured) != len(prompts):
        raise BriaInputError(
            f"structured_prompt has {len(structured)} entries but there are {len(prompts)} prompts; give one "
            "structured prompt, or exactly one per prompt (to refine each)"
        )
    return list(zip(prompts, structured, strict=True))


def plan_items(
    model_id: int,
    requests: list[tuple[str | None, str | None]],
    *,
    kind: str,
    per_request: int,
    base_seed: int | None,
    params: Mapping[str, Any] | None = None,
) -> list[WorkItem]:
    """Expand requests into work items: ``per_request`` outputs each, with deterministic seeds and names.

    :param model_id: the model.
    :param requests: (prompt, structured_prompt) pairs.
    :param kind: what is generated (``image``, ``legacy``, ``structured_prompt``...).
    :param per_request: outputs per request (``num_images_per_prompt``).
    :param base_seed: the user's seed (image ``i`` uses ``base_seed + i``), or ``None`` to derive seeds.
    :param params: the explicitly set generation parameters (part of the names).
    """
    per_request = as_int(per_request, "num_images_per_prompt", minimum=1, maximum=MAX_IMAGES_PER_PROMPT)
    items: list[WorkItem] = []
    seen: set[str] = set()
    for prompt, structured in requests:
        for index in range(per_request):
            if base_seed is not None:
                seed = base_seed + index  # sent as given (the spec states no range); only large ones wrap
                if seed >= SEED_MODULUS:
                    seed %= SEED_MODULUS
            else:
                seed = derive_seed(model_id, prompt, structured, index, kind)
            stem = output_stem(model_id, kind=kind, prompt=prompt, structured_prompt=structured, seed=seed,
                               index=index, params=params)
            if stem in seen:
                continue
            seen.add(stem)
            items.append(WorkItem(stem=stem, index=index, seed=seed, prompt=prompt, structured_prompt=structured))
    return items


@dataclass
class Batch:
    """One task's generation batch, from plan to conclusion.

    :param model_id: the model.
    :param items: the planned work items, in output order.
    :param folder: the output folder (``None``: nothing is stored, structured prompts without ``output_path``).
    :param names: the folder's file names when the batch started.
    :param records: results by item stem (existing ones first, then produced ones).
    """

    model_id: int
    items: list[WorkItem]
    folder: OutputFolder | None = None
    names: set[str] = field(default_factory=set)
    records: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str | None:
        """The output folder's URI, for messages."""
        return self.folder.uri if self.folder is not None else None
