"""Parse-cost probe: parse DAG files the way Airflow 3's dag-processor does, one forked child per file.

The dag-processor manager has Airflow imported, pre-imports the ``airflow.*`` modules a DAG file imports
(``[dag_processor] parsing_pre_import_modules``), then forks one child per file that runs
``airflow.dag_processing.processor._parse_file`` (DagBag + serialisation). Modules outside ``airflow.*``
(the provider) are imported by every child again, on every parse.

This probe is that process model: the parent imports what the manager imports, freezes its heap when the manager
does (``gc.freeze()`` in ``before_run`` on the newest line; 3.0 does not: the children then neither scan nor copy-
on-write the parent's objects in their garbage collections), and times ``_parse_file`` in a forked child per file
and per repeat. Four variants of each example file, interleaved (order rotating per repeat):

* ``example``: the file of ``dags/``;
* ``trivial``: a generated file with the same DAGs and task counts, each a chain of ``EmptyOperator``;
* ``matched``: a generated file with the same DAGs, the same schedules, Params (defaults and schemas) and tasks,
  the same ``@task`` decorators (``@task``, ``@task.branch``, ``@task.short_circuit``) where the example has them
  and ``EmptyOperator`` where it has an operator: the same DAG without the provider. An operator class the DAG
  file defines on an Airflow base (the example's review step subclasses Airflow's ``HITLOperator``, which exists
  from 3.1 on) makes the matched file import that base's module with ``importlib`` while it is parsed, as the
  example's version-gated import does: the manager's pre-import sees only top-level ``import`` statements;
* ``example_preimported``: the example again, with the provider modules it imports already imported (what a
  deployment gets by importing the provider in ``airflow_local_settings.py``).

Prints one JSON line. Usage: ``parse_probe.py EXAMPLES_DIR WORK_DIR REPS``.
"""

from __future__ import annotations

import ast
import gc
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import structlog
from airflow.dag_processing import manager as _manager  # imported by the real manager
from airflow.dag_processing.processor import DagFileParseRequest, _parse_file, _pre_import_airflow_modules

LOG = structlog.get_logger(logger_name="bench")


def provider_imports(path: Path) -> list[str]:
    """Modules of the provider a DAG file imports at top level."""
    tree = ast.parse(path.read_text())
    mods: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("airflow_provider_bria"):
            mods.append(node.module)
        elif isinstance(node, ast.Import):
            mods += [a.name for a in node.names if a.name.startswith("airflow_provider_bria")]
    return mods


def in_child(func: Any) -> dict[str, Any]:
    """Run ``func()`` in a forked child; return the dict it returns (sent back through a pipe)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        try:
            payload = func()
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            payload = {"error": f"{type(err).__name__}: {err}"}
        os.write(write_fd, json.dumps(payload).encode())
        os.close(write_fd)
        os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"error": "child died"}')


def _plain(value: Any) -> Any:
    """Undo Airflow's serialisation wrappers (``{"__var": ..., "__type": "dict"}``) in a Param schema."""
    if isinstance(value, dict):
        if "__var" in value and "__type" in value:
            return _plain(value["__var"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


#: ``@task`` decorators by the operator class they build (the serialised task's ``task_type``).
DECORATORS = {
    "_PythonDecoratedOperator": "task",
    "_BranchPythonDecoratedOperator": "task.branch",
    "_ShortCircuitDecoratedOperator": "task.short_circuit",
}


def _decorator(var: dict[str, Any]) -> str | None:
    """The ``@task`` decorator that built a serialised task, or ``None`` for a plain operator."""
    if "decorators" not in str(var.get("_task_module", "")):
        return None
    kind = str(var.get("task_type"))
    if kind not in DECORATORS:
        raise SystemExit(f"parse probe: unknown decorated task type {kind!r}: teach DECORATORS this decorator")
    return DECORATORS[kind]


def airflow_bases(path: Path) -> dict[str, str]:
    """Per operator class the DAG file defines, the module of its nearest base class from Airflow.

    Called in the child after the file was parsed: the DAG file is then in ``sys.modules``.
    """
    from airflow.sdk import BaseOperator

    module = next((m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == str(path)), None)
    if module is None:
        raise SystemExit(f"parse probe: {path} is not in sys.modules after it was parsed")
    found: dict[str, str] = {}
    for name, value in vars(module).items():
        if not (isinstance(value, type) and issubclass(value, BaseOperator) and value.__module__ == module.__name__):
            continue
        base = next(c for c in value.__mro__ if c.__module__.startswith("airflow."))
        found[name] = base.__module__
    return found


def _shape(data: dict[str, Any], bases: dict[str, str]) -> dict[str, Any]:
    """What the generated files copy from a serialised DAG: task ids/kinds and Params.

    :param bases: :func:`airflow_bases` of the file the DAG comes from.
    """
    tasks = []
    for entry in data.get("tasks", []):
        var = entry.get("__var", entry)
        decorator = _decorator(var)
        tasks.append({"task_id": var.get("task_id"), "decorator": decorator,
                      "airflow_base": bases.get(str(var.get("task_type")))})
    params = []
    for name, spec in data.get("params", []):
        params.append({"name": name, "default": _plain(spec.get("default")), "description": spec.get("description"),
                       "schema": _plain(spec.get("schema") or {})})
    return {"tasks": tasks, "params": params, "assets": sorted(_asset_uris(data)), "timetable": data.get("timetable")}


def _asset_uris(value: Any) -> set[str]:
    """URIs of every asset a serialised DAG names (schedule, inlets, outlets)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("uri"), str) and "://" in value["uri"]:
            found.add(value["uri"])
        for item in value.values():
            found |= _asset_uris(item)
    elif isinstance(value, list):
        for item in value:
            found |= _asset_uris(item)
    return found


def timed_parse(path: Path, bundle: Path, preimport: list[str]) -> dict[str, Any]:
    """Child body: (optionally import the provider modules first, untimed) then time ``_parse_file``."""
    import importlib

    for mod in preimport:
        importlib.import_module(mod)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = _parse_file(DagFileParseRequest(file=str(path), bundle_path=bundle, bundle_name="bench"), LOG)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    dags = {}
    errors = {}
    if result is not None:
        bases = airflow_bases(path)
        for lazy in result.serialized_dags:
            data = lazy.data["dag"]
            dags[data["dag_id"]] = _shape(data, bases)
        errors = {str(k): str(v)[-500:] for k, v in (result.import_errors or {}).items()}
    return {"seconds": seconds, "cpu": cpu, "dags": dags, "errors": errors}


HEADER = [
    "from __future__ import annotations",
    "",
    "from airflow.providers.standard.operators.empty import EmptyOperator",
    "from airflow.sdk import DAG, Asset, Param, chain, task",
    "",
]


def trivial_source(dags: dict[str, Any]) -> str:
    """A DAG file with the same DAGs' task counts, each a chain of EmptyOperators (no Params)."""
    lines = list(HEADER)
    for i, (dag_id, shape) in enumerate(sorted(dags.items())):
        lines += [
            f"with DAG(dag_id={'trivial_' + dag_id!r}, schedule=None, catchup=False) as dag_{i}:",
            f"    chain(*[EmptyOperator(task_id=f't{{n}}') for n in range({max(1, len(shape['tasks']))})])",
            "",
        ]
    return "\n".join(lines)


def _asset_condition_source(cond: dict[str, Any]) -> str:
    """Python source for a serialised asset condition (one asset, or an any/all of them)."""
    kind = cond.get("__type")
    if kind == "asset":
        return f"Asset(uri={cond['uri']!r}, name={cond['name']!r})"
    if kind in ("asset_any", "asset_all"):
        joiner = " | " if kind == "asset_any" else " & "
        return "(" + joiner.join(_asset_condition_source(c) for c in cond["objects"]) + ")"
    raise SystemExit(f"parse probe: unsupported asset condition {kind!r}: teach matched_source this schedule")


def _seconds_source(value: Any) -> str:
    """A serialised ``timedelta`` (seconds) or flag as source."""
    return repr(value) if isinstance(value, bool) else f"timedelta(seconds={float(value)!r})"


def schedule_source(timetable: dict[str, Any] | None) -> tuple[str, set[str]]:
    """The ``schedule=`` argument reproducing a serialised timetable, and the imports it needs.

    A DAG that can be scheduled validates every Param default against its schema when it is built (Airflow's
    ``DAG._validate_params``), a DAG with ``schedule=None`` does not: the matched DAG must be scheduled like the
    example, or the baseline skips Airflow work the example pays.
    """
    if not timetable:
        return "None", set()
    kind, var = timetable["__type"], timetable.get("__var") or {}
    module, _, name = kind.rpartition(".")
    imports = {f"from {module} import {name}"}
    if name == "NullTimetable":
        return "None", set()
    if name == "AssetTriggeredTimetable":
        return _asset_condition_source(var["asset_condition"]), set()
    if name == "CronTriggerTimetable":
        args = [repr(var["expression"]), f"timezone={var['timezone']!r}"]
        if var.get("interval"):
            args.append(f"interval={_seconds_source(var['interval'])}")
        if "run_immediately" in var:
            args.append(f"run_immediately={_seconds_source(var['run_immediately'])}")
        return f"{name}({', '.join(args)})", imports | {"from datetime import timedelta"}
    if name == "AssetOrTimeSchedule":
        inner, inner_imports = schedule_source(var["timetable"])
        return (f"{name}(timetable={inner}, assets={_asset_condition_source(var['asset_condition'])})",
                imports | inner_imports)
    raise SystemExit(f"parse probe: unsupported timetable {kind!r}: teach schedule_source this schedule")


def matched_source(dags: dict[str, Any]) -> str:
    """The same DAGs without the provider: same schedule, Params, assets, ``@task`` functions and EmptyOperators.

    The example DAGs name assets (schedules, inlets, outlets); the first ``Asset`` a process builds makes Airflow
    discover every installed provider's asset URI handlers (with the Amazon provider installed, that imports
    boto3), which any DAG with an asset pays, with or without this provider. The matched DAGs therefore build
    the same assets, as outlets of their first task, and the same schedule (:func:`schedule_source`).
    """
    lines = list(HEADER)
    body: list[str] = []
    imports: set[str] = set()
    base_modules = sorted({t["airflow_base"] for s in dags.values() for t in s["tasks"] if t["airflow_base"]})
    if base_modules:  # loaded while the file is parsed, like the example's version-gated import (see the docstring)
        imports.add("import importlib")
        body += [f"importlib.import_module({m!r})" for m in base_modules] + [""]
    for i, (dag_id, shape) in enumerate(sorted(dags.items())):
        schedule, needs = schedule_source(shape.get("timetable"))
        imports |= needs
        assets = ", ".join(f"Asset(uri={u!r}, name={u!r})" for u in shape["assets"])
        body.append(f"assets_{i} = [{assets}]")
        params = ", ".join(
            f"{p['name']!r}: Param({p['default']!r}, description={p['description']!r}, **{p['schema']!r})"
            for p in shape["params"]
        )
        body.append(f"with DAG(dag_id={'matched_' + dag_id!r}, schedule={schedule}, catchup=False, "
                    f"params={{{params}}}) as dag_{i}:")
        names = []
        for n, t in enumerate(shape["tasks"]):
            outlets = f", outlets=assets_{i}" if n == 0 else ""
            if t["decorator"]:
                body += [f"    @{t['decorator']}(task_id={t['task_id']!r}{outlets})", f"    def _f{n}() -> None:",
                         "        return None", f"    n{n} = _f{n}()"]
            else:
                body.append(f"    n{n} = EmptyOperator(task_id={t['task_id']!r}{outlets})")
            names.append(f"n{n}")
        body += [f"    chain({', '.join(names)})" if names else "    pass", ""]
    return "\n".join(lines + sorted(imports) + [""] + body)


def _decorators(dags: dict[str, Any]) -> list[list[tuple[str, str | None]]]:
    """Per DAG (in dag-id order), each task's id and the ``@task`` decorator that built it (``None``: an operator)."""
    return [[(t["task_id"], t["decorator"]) for t in shape["tasks"]] for _, shape in sorted(dags.items())]


VARIANTS = ("example", "trivial", "matched", "example_preimported")


def manager_freezes() -> bool:
    """Whether the installed dag-processor manager calls ``gc.freeze()`` before its parsing loop (3.3 does, 3.0 not)."""
    before_run = getattr(_manager.DagFileProcessorManager, "before_run", None)
    return before_run is not None and "gc.freeze()" in inspect.getsource(before_run)


def main() -> None:
    examples_dir, work_dir, reps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    if manager_freezes():
        gc.freeze()  # as the manager does before forking its first child ("to prevent COW in forked process")
    examples = sorted(p for p in examples_dir.glob("*.py") if not p.name.startswith("_"))
    made = {name: work_dir / name for name in ("trivial", "matched")}
    for folder in made.values():
        folder.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, Any]] = []
    for path in examples:
        _pre_import_airflow_modules(str(path), LOG)
        shape = in_child(lambda p=path: timed_parse(p, examples_dir, []))
        if shape.get("error") or shape.get("errors") or not shape.get("dags"):
            raise SystemExit(f"{path.name} does not parse cleanly: {shape}")
        entry: dict[str, Any] = {
            "name": path.name, "dags": {k: len(v["tasks"]) for k, v in shape["dags"].items()},
            "params": {k: len(v["params"]) for k, v in shape["dags"].items()},
            "preimport": provider_imports(path), "times": {v: [] for v in VARIANTS},
            "cpu": {v: [] for v in VARIANTS},
            "paths": {"example": (path, examples_dir), "example_preimported": (path, examples_dir)},
        }
        for kind, source in (("trivial", trivial_source), ("matched", matched_source)):
            generated = made[kind] / path.name
            generated.write_text(source(shape["dags"]))
            _pre_import_airflow_modules(str(generated), LOG)
            check = in_child(lambda p=generated, b=made[kind]: timed_parse(p, b, []))
            if check.get("error") or check.get("errors"):
                raise SystemExit(f"generated {generated} does not parse: {check}")
            entry[f"{kind}_tasks"] = {k: len(v["tasks"]) for k, v in check["dags"].items()}
            if kind == "matched":  # scheduled like the example (a scheduled DAG validates its Params when built)
                entry["timetables_match"] = [v["timetable"] for _, v in sorted(check["dags"].items())] == [
                    v["timetable"] for _, v in sorted(shape["dags"].items())]
                entry["decorators_match"] = _decorators(check["dags"]) == _decorators(shape["dags"])
            entry["paths"][kind] = (generated, made[kind])
        files.append(entry)
    for rep in range(reps):
        for entry in files:
            shift = rep % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                path, bundle = entry["paths"][variant]
                pre = entry["preimport"] if variant == "example_preimported" else []
                out = in_child(lambda p=path, b=bundle, m=pre: timed_parse(p, b, m))
                if out.get("error") or out.get("errors"):
                    raise SystemExit(f"{variant} {path} failed: {out}")
                entry["times"][variant].append(out["seconds"])
                entry["cpu"][variant].append(out["cpu"])
    for entry in files:
        entry.pop("paths")
    print(json.dumps({"reps": reps, "files": files}))


if __name__ == "__main__":
    main()
