"""Shared helpers of the benchmarks: the results table, the machine description, probes and test images.

A uniquely named module (the test folders are not packages): benchmark modules and ``conftest.py`` import it
as ``benchlib``. Nothing here imports Airflow.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(HERE.parent) not in sys.path:  # the probe scripts run outside pytest: the shared test kit lives in tests/
    sys.path.insert(0, str(HERE.parent))

from kit import conn_json, make_context  # noqa: E402

#: Where probe subprocesses keep their bytecode: the suite runs with PYTHONDONTWRITEBYTECODE=1, but a deployed
#: provider has .pyc files, so import and parse costs are measured with a warm bytecode cache kept outside the repo.
PYCACHE = Path(tempfile.gettempdir()) / "airflow-provider-bria-bench-pycache"

MET, MISSED, INFO, ERROR = "met", "missed", "info", "error"
_STATUS_TEXT = {MET: "✅ met", MISSED: "❌ missed", INFO: "info", ERROR: "💥 error"}


@dataclass
class BenchResult:
    """One row of the results table.

    :param section: the issue's benchmark group (``1. Parse cost``...).
    :param name: what was measured.
    :param measured: the figure, formatted.
    :param target: the target, formatted (empty for information rows).
    :param status: ``met``, ``missed``, ``info`` or ``error``.
    :param notes: how it was measured, side figures.
    :param value: the raw number (for the JSON dump).
    """

    section: str
    name: str
    measured: str
    target: str = ""
    status: str = INFO
    notes: str = ""
    value: float | None = None


RESULTS: list[BenchResult] = []
SESSION: dict[str, Any] = {}


def record(
    section: str,
    name: str,
    value: float | None,
    fmt: str,
    *,
    target: tuple[str, float] | None = None,
    target_fmt: str | None = None,
    notes: str = "",
    none_text: str = "n/a",
    none_status: str = ERROR,
) -> BenchResult:
    """Add a row to the table and print it at once (so a long run shows progress).

    :param section: the benchmark group.
    :param name: what was measured.
    :param value: the number (``None`` when it could not be measured).
    :param fmt: ``str.format`` pattern of the number, e.g. ``"{:.2f}×"``.
    :param target: ``("<=", 1.10)``, ``(">=", 0.8)``, ``("<", 0.2)``... or ``None`` for an information row.
    :param target_fmt: pattern of the target (``fmt`` by default).
    :param notes: free text.
    :param none_text: what to show when ``value`` is ``None``.
    :param none_status: the status when ``value`` is ``None``.
    """
    if value is None:
        status, measured = none_status, none_text
    else:
        measured = fmt.format(value)
        status = INFO if target is None else (MET if _compare(value, *target) else MISSED)
    target_text = ""
    if target is not None:
        target_text = f"{target[0].replace('<=', '≤').replace('>=', '≥')} {(target_fmt or fmt).format(target[1])}"
    row = BenchResult(section, name, measured, target_text, status, notes, value)
    RESULTS.append(row)
    print(f"\n[bench] {section} | {name}: {measured} (target {target_text or '-'}) {status} {notes}", flush=True)
    return row


def record_error(section: str, name: str, target: str, err: BaseException | str) -> BenchResult:
    """Add a row for a benchmark that could not run.

    :param section: the benchmark group.
    :param name: what should have been measured.
    :param target: the target text.
    :param err: what went wrong.
    """
    text = f"{type(err).__name__}: {err}" if isinstance(err, BaseException) else str(err)
    row = BenchResult(section, name, "n/a", target, ERROR, text.replace("\n", " ")[:400])
    RESULTS.append(row)
    return row


def _compare(value: float, op: str, threshold: float) -> bool:
    return {"<=": value <= threshold, "<": value < threshold, ">=": value >= threshold, ">": value > threshold}[op]


@contextlib.contextmanager
def bria_connection(emulator: Any) -> Iterator[None]:
    """Point ``bria_default`` at ``emulator`` (environment variable) for the ``with`` block.

    :param emulator: an ``EmulatorProcess``.
    """
    old = os.environ.get("AIRFLOW_CONN_BRIA_DEFAULT")
    os.environ["AIRFLOW_CONN_BRIA_DEFAULT"] = conn_json(emulator.url, emulator.token)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("AIRFLOW_CONN_BRIA_DEFAULT", None)
        else:
            os.environ["AIRFLOW_CONN_BRIA_DEFAULT"] = old


def context() -> dict[str, Any]:
    """A minimal task context for ``operator.execute(context)``."""
    return make_context(dag_id="bench", task_id="bench", run_id="bench_run")


def rss_bytes() -> int:
    """Current resident set size of this process (Linux ``/proc``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --------------------------------------------------------------------------------------------- statistics


def median(values: Iterable[float]) -> float:
    """Median of non-empty values.

    :param values: the samples.
    """
    return float(statistics.median(list(values)))


def rolling_max(times: Sequence[float], window: float) -> int:
    """Largest number of events inside any window of ``window`` seconds.

    :param times: event times (any order).
    :param window: window length in seconds.
    """
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


# --------------------------------------------------------------------------------------------- machine


def machine_description() -> dict[str, str]:
    """Cores, RAM, CPU model, OS, Python and Airflow versions of this machine."""
    info: dict[str, str] = {}
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["CPU"] = cpu
    logical = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    info["Cores"] = f"{usable} usable ({logical} logical)"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["RAM"] = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    except OSError:
        info["RAM"] = "unknown"
    info["OS"] = f"{platform.system()} {platform.release()}"
    info["Python"] = platform.python_version()
    try:
        from importlib.metadata import version

        info["Airflow"] = version("apache-airflow")
        info["Provider"] = version("airflow-provider-bria")
    except Exception:  # noqa: BLE001 - metadata is best effort
        info.setdefault("Airflow", "unknown")
    if hasattr(os, "getloadavg"):
        info["Load average at start (1/5/15 min)"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    info["Date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return info


# --------------------------------------------------------------------------------------------- probes


def probe_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a probe subprocess: the suite's Airflow settings plus a bytecode cache outside the repo.

    :param extra: more variables.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra or {})
    return env


def run_probe(script: str, args: Sequence[str], *, env: dict[str, str] | None = None,
              timeout: float = 600.0, python_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run ``tests/benchmarks/<script>`` in a fresh interpreter; return the JSON it prints on its last line.

    :param script: the probe file name.
    :param args: its arguments.
    :param env: its environment (:func:`probe_env` by default).
    :param timeout: seconds before it is killed.
    :param python_args: interpreter options (``-X importtime``).
    """
    proc = subprocess.run(
        [sys.executable, *python_args, str(HERE / script), *args],
        env=env or probe_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{script} exited with {proc.returncode}\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-6000:]}"
        )
    return json.loads(lines[-1])


def warm_bytecode() -> float:
    """Compile Airflow and the provider into :data:`PYCACHE` once (a deployed install ships .pyc files)."""
    import time

    started = time.monotonic()
    code = (
        "import airflow.sdk, airflow.dag_processing.manager, airflow.dag_processing.processor, "
        "airflow.providers.standard.operators.empty, airflow.triggers.base\n"
        "import airflow_provider_bria.get_provider_info as g, importlib\n"
        "info = g.get_provider_info()\n"
        "for kind in ('hooks', 'operators', 'sensors', 'triggers'):\n"
        "    for entry in info.get(kind, []):\n"
        "        for mod in entry['python-modules']:\n"
        "            importlib.import_module(mod)\n"
        "import airflow_provider_bria.assets, airflow_provider_bria.links.bria\n"
    )
    subprocess.run([sys.executable, "-c", code], env=probe_env(), check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def training_models(emu: Any, n: int) -> list[int]:
    """``n`` models of one completed dataset, each with a training started (set the emulator's training long).

    :param emu: a running emulator.
    :param n: how many models.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from airflow_provider_bria.hooks.bria import BriaHook

    with bria_connection(emu):
        hook = BriaHook(retry_delay=0.2)
        project = hook.create_project("Bench triggers", "illustration", "stylized_scene", training_version="fibo")
        dataset = hook.create_dataset(project["id"], "trigger-ds", training_version="fibo")
        for i in range(5):
            hook.upload_image(dataset["id"], file=png_bytes(1024, 1024, channels=1, base=40 * i, tag=str(i)),
                              image_name=f"img-{i}.png")
        # a FIBO dataset needs a visual_schema before it can be completed (Bria's spec)
        hook.update_dataset(dataset["id"], visual_schema={"style_medium": "illustration"}, status="completed")
        local = threading.local()

        def make(i: int) -> int:
            h = getattr(local, "hook", None)
            if h is None:
                h = local.hook = BriaHook(retry_delay=0.2)
            model = h.create_model(dataset["id"], f"model-{i:04d}")
            h.start_training(model["id"])
            return int(model["id"])

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(make, range(n)))


# --------------------------------------------------------------------------------------------- images


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, *, channels: int = 3, noise_rows: int = 0, base: int = 0,
              level: int = 1, tag: str = "") -> bytes:
    """A valid PNG written directly with zlib (much faster than Pillow's encoder for big test sets).

    Rows ``0..noise_rows-1`` are random bytes (incompressible, like photo detail), the rest a smooth
    gradient shifted by ``base``; ``tag`` goes into a tEXt chunk. Different ``base``/noise give distinct content.

    :param width: pixels.
    :param height: pixels.
    :param channels: 1 (grey) or 3 (RGB).
    :param noise_rows: rows of random pixels.
    :param base: gradient offset (0-255).
    :param level: zlib level (0 = stored: the file is as large as the raw pixels).
    :param tag: text stored in the file.
    """
    stride = width * channels
    noise = os.urandom(noise_rows * stride) if noise_rows else b""
    gradient_row = bytes(((x // channels + base) % 256) for x in range(stride))
    rows = [b"\x00" + noise[r * stride:(r + 1) * stride] for r in range(noise_rows)]
    rows += [b"\x00" + gradient_row] * (height - noise_rows)
    raw = b"".join(rows)
    color_type = 0 if channels == 1 else 2
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr)]
    if tag:
        parts.append(_chunk(b"tEXt", b"Comment\x00" + tag.encode()))
    parts += [_chunk(b"IDAT", zlib.compress(raw, level)), _chunk(b"IEND", b"")]
    return b"".join(parts)


@dataclass
class ImageSet:
    """A folder of generated test images.

    :param folder: where they are.
    :param files: the files, sorted.
    :param total_bytes: their total size.
    :param seconds: time taken to generate them.
    """

    folder: Path
    files: list[Path] = field(default_factory=list)
    total_bytes: int = 0
    seconds: float = 0.0


def make_image_set(folder: Path, count: int, maker: Callable[[int], bytes], prefix: str = "img") -> ImageSet:
    """Write ``count`` images ``<prefix>-00000.png``... made by ``maker(index)`` (skipped when already there).

    :param folder: destination (created).
    :param count: how many.
    :param maker: builds the bytes of image ``index``.
    :param prefix: file name prefix.
    """
    import time

    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    total = 0
    written = False
    for i in range(count):
        path = folder / f"{prefix}-{i:05d}.png"
        if not path.exists():
            path.write_bytes(maker(i))
            written = True
        files.append(path)
        total += path.stat().st_size
    if written and hasattr(os, "sync"):
        os.sync()  # the kernel writes the new files back now, not while a benchmark is being timed
    return ImageSet(folder, files, total, time.monotonic() - started)


# --------------------------------------------------------------------------------------------- report


#: The "Before" column: figures of the last complete run before the current round of work (extracted once from
#: that run's docs/benchmarks.md); ``rows`` maps a row label to its measured text, ``aliases`` maps a label that
#: changed since to the old row (``{"from": old label}``, with ``"before"`` when the old figure was in another unit).
BASELINE = HERE / "baseline.json"


def load_baseline(path: Path = BASELINE) -> dict[str, Any] | None:
    """The baseline run (:data:`BASELINE`), or ``None`` when there is none.

    :param path: the JSON file.
    """
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return data


def _label_key(label: str) -> str:
    """A row label without what a rewording leaves out: case, digit-group commas (``1,000``), a trailing
    parenthesis (``(poll every 5 s)``)."""
    text = " ".join(label.split()).lower()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    return re.sub(r"\s*\([^()]*\)$", "", text)


def before_text(baseline: dict[str, Any], name: str) -> str:
    """The baseline figure of the row ``name``: the same label, else its alias; ``new`` when the row is new.

    :param baseline: :func:`load_baseline`.
    :param name: the row label of this run.
    """
    rows = {_label_key(k): v for k, v in baseline.get("rows", {}).items()}
    aliases = {_label_key(k): v for k, v in baseline.get("aliases", {}).items()}
    key = _label_key(name)
    alias = aliases.get(key)
    if alias is not None:
        if "before" in alias:
            return str(alias["before"])
        return str(rows.get(_label_key(alias["from"]), "new"))
    return str(rows.get(key, "new"))


def render_markdown(machine: dict[str, str], results: Sequence[BenchResult], *, duration: float,
                    findings: str, baseline: dict[str, Any] | None = None) -> str:
    """The generated ``docs/benchmarks.md``.

    :param machine: :func:`machine_description`.
    :param results: the rows.
    :param duration: seconds the whole run took.
    :param findings: hand-written analysis kept with the generator (Markdown).
    :param baseline: :func:`load_baseline`: adds a "Before" column (``new`` for a row the baseline lacks).
    """
    before_head = f"Before ({baseline.get('date', 'baseline')})" if baseline else ""
    lines = [
        "# Benchmarks",
        "",
        "What the provider costs an Airflow deployment, measured by `make bench` (the `tests/benchmarks/` suite; it",
        "is not part of `make test`). Each figure is a **ratio against a baseline measured side by side in the same",
        "run** (interleaved, medians of repeats), so the figures hold on a noisy machine; absolute numbers are",
        "given in the notes for context only. This page is generated by `tests/benchmarks/conftest.py`: edit the",
        "generator, not this file.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in machine.items()]
    lines += [f"| Benchmark run time | {duration / 60:.1f} min |", "", "## Results", ""]
    if baseline:
        lines += [f"| Benchmark | {before_head} | Measured | Target | Result | Notes |", "|---|---|---|---|---|---|"]
    else:
        lines += ["| Benchmark | Measured | Target | Result | Notes |", "|---|---|---|---|---|"]
    section = None
    for row in sorted(results, key=lambda r: r.section):
        if row.section != section:
            section = row.section
            lines.append(f"| **{section}** | | | | |" + (" |" if baseline else ""))
        notes = row.notes.replace("|", "\\|").replace("\n", " ")
        before = f" {before_text(baseline, row.name)} |" if baseline else ""
        lines.append(f"| {row.name} |{before} {row.measured} | {row.target or '–'} | {_STATUS_TEXT[row.status]} | "
                     f"{notes} |")
    lines += ["", findings.strip(), ""]
    return "\n".join(lines)


def render_table(results: Sequence[BenchResult]) -> str:
    """The plain-text table printed at the end of the run.

    :param results: the rows.
    """
    headers = ("Benchmark", "Measured", "Target", "Result")
    rows = [(f"{r.section} / {r.name}", r.measured, r.target or "-", r.status)
            for r in sorted(results, key=lambda r: r.section)]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    widths[0] = min(widths[0], 90)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for row in rows:
        out.append("  ".join(str(c)[:w].ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(out)
