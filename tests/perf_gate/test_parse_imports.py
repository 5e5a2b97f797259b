"""What defining a DAG imports: no HTTP stack, no hook, no generation/upload/training machinery (not timed).

The dag-processor imports every DAG file again in a forked child on every parse, so each module an operator
module imports at top level is paid on every parse of every file that uses it. Defining tasks must import
only the operator classes, their links and the (light) argument validation; the hook, its HTTP stack, the job
engine, the upload pipeline and the waiting loops are imported by ``execute`` (or by the ``hook`` property,
or by the trigger when the task defers).

One subprocess imports what the dag-processor manager imports (``airflow.sdk``, the dag-processing modules),
then forks one child per target (each operator/sensor/link module and each example DAG file, executed the
way a parse executes it); each child reports the modules its target loaded that the parent had not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import benchlib
import pytest

REPO = Path(__file__).resolve().parents[2]
PKG = "airflow_provider_bria"

#: Modules a parse must not load (a name ending in "." is a prefix).
HEAVY = (
    "requests",
    "httpx",
    "tenacity",
    f"{PKG}.hooks.bria",
    f"{PKG}.hooks._base",
    f"{PKG}.hooks._api_",
    f"{PKG}.hooks._async",
    f"{PKG}.hooks._retry",
    f"{PKG}.hooks._download",
    f"{PKG}.hooks._connection",
    f"{PKG}.hooks._connection_check",
    f"{PKG}.hooks._inputs",
    f"{PKG}.hooks._redact",
    f"{PKG}.responses",
    f"{PKG}.results",
    f"{PKG}._state",
    f"{PKG}.operators._generation_engine",
    f"{PKG}.operators._generation_polling",
    f"{PKG}.operators._generation_failures",
    f"{PKG}.operators._generation_inputs",
    f"{PKG}.operators._rate_limit",
    f"{PKG}.operators._sidecar",
    f"{PKG}.operators._upload_basic",
    f"{PKG}.operators._upload_bulk",
    f"{PKG}.operators._upload_common",
    f"{PKG}.operators._quality_gate",
    f"{PKG}.operators._image_sources",
    f"{PKG}.operators._bulk_zip",
    f"{PKG}.operators._outputs",
    f"{PKG}.operators._generation_plan",
    f"{PKG}.operators._png_check",
    "packaging.version",
    "airflow.sdk.bases.hook",
    f"{PKG}.waiting.",
    f"{PKG}.triggers.",
)

#: Loaded when a training operator or sensor is *built* (not imported): its constructor checks the trigger's
#: arguments (``check_trigger_kwargs``) so a bad value fails at parse time; that check is its own light module.
BUILD_TIME = (f"{PKG}.triggers", f"{PKG}.triggers._training_args")

def _dag_facing_modules() -> tuple[str, ...]:
    """Modules a DAG author imports to define tasks: every operator and sensor module the provider registers, the
    links' module, and the light modules DAG files use directly."""
    from airflow_provider_bria.get_provider_info import get_provider_info

    info = get_provider_info()
    registered = [module for kind in ("operators", "sensors") for entry in info.get(kind, [])
                  for module in entry["python-modules"]]
    links = sorted({path.rpartition(".")[0] for path in info.get("extra-links", [])})
    return (*registered, *links, f"{PKG}.assets", f"{PKG}.contract", f"{PKG}.hooks")


MODULES = _dag_facing_modules()

_CHILDREN = r"""
import json, os, runpy, sys
import airflow.sdk
from airflow.dag_processing import manager, processor  # what the dag-processor manager has imported

def loaded(target):
    before = set(sys.modules)
    if target.endswith(".py"):
        processor._pre_import_airflow_modules(target, None)  # airflow.* only, as the manager does
        # The first Asset makes Airflow discover every installed provider's asset URI handlers (with the
        # Amazon provider, boto3 and requests): paid by any DAG with an asset, with or without this provider.
        airflow.sdk.Asset(uri="bria://probe/probe", name="probe")
        before = set(sys.modules)
        runpy.run_path(target, run_name="dag_file")
    else:
        __import__(target)
    return sorted(set(sys.modules) - before)

out = {}
for target in sys.argv[1:]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            payload = {"new": loaded(target)}
        except BaseException as err:
            payload = {"error": f"{type(err).__name__}: {err}"}
        os.write(write_fd, json.dumps(payload).encode())
        os._exit(0)
    os.close(write_fd)
    data = b""
    while chunk := os.read(read_fd, 1 << 16):
        data += chunk
    os.close(read_fd)
    os.waitpid(pid, 0)
    out[target] = json.loads(data or b'{"error": "child died"}')
print(json.dumps(out))
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks one child per target")


def _heavy(names: list[str]) -> list[str]:
    return [n for n in names if any(n.startswith(h) if h.endswith((".", "_")) else n == h or
                                    n.startswith(h + ".") for h in HEAVY)]


@pytest.fixture(scope="module")
def imports() -> dict[str, dict[str, list[str]]]:
    """``{target: {"new": [modules its import or parse loaded]}}`` for every module and example DAG file."""
    dag_files = sorted(str(p) for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
    assert dag_files, "no example DAG in dags/"
    proc = subprocess.run([sys.executable, "-c", _CHILDREN, *MODULES, *dag_files], env=benchlib.probe_env(),
                          capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, dict[str, list[str]]] = json.loads(proc.stdout.strip().splitlines()[-1])
    for target, result in out.items():
        assert "error" not in result, f"{target}: {result['error']}"
    return out


@pytest.mark.parametrize("module", MODULES)
def test_module_import_is_light(imports: dict[str, dict[str, list[str]]], module: str) -> None:
    new = imports[module]["new"]
    assert module in new, f"{module} was already imported before the check: {new}"
    heavy = _heavy(new)
    assert not heavy, f"importing {module} loads {heavy}: import them where they are used (execute, hook, defer)"


def test_example_dags_parse_light(imports: dict[str, dict[str, list[str]]]) -> None:
    dag_files = [t for t in imports if t.endswith(".py")]
    assert len(dag_files) >= 4
    offenders = {Path(t).name: [n for n in _heavy(imports[t]["new"]) if n not in BUILD_TIME] for t in dag_files}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"parsing the example DAGs loads: {offenders}"
    for target in dag_files:  # the check looks at the right thing: the parse did import the provider
        assert any(n.startswith(f"{PKG}.operators.") for n in imports[target]["new"]), target


#: Every provider module an example DAG's parse may load (issue 18): each one is paid by every forked parse of every
#: file using it (finder, unmarshal, module body, copy-on-write faults), so a new one must be a deliberate choice.
PARSE_MODULES = frozenset({
    PKG, f"{PKG}._compat", f"{PKG}.assets", f"{PKG}.contract", f"{PKG}.exceptions", f"{PKG}.links",
    f"{PKG}.links.bria", f"{PKG}.operators", f"{PKG}.operators.base", f"{PKG}.operators._reconcile",
    f"{PKG}.operators._lifecycle", f"{PKG}.operators._output_limits", f"{PKG}.operators._generation_base",
    f"{PKG}.operators._generation_files", f"{PKG}.operators.captions", f"{PKG}.operators.dataset",
    f"{PKG}.operators.generation", f"{PKG}.operators.model", f"{PKG}.operators.project",
    f"{PKG}.operators.training", f"{PKG}.operators.upload", *BUILD_TIME,
})


def test_example_dags_load_only_the_pinned_provider_modules(imports: dict[str, dict[str, list[str]]]) -> None:
    for target in (t for t in imports if t.endswith(".py")):
        extra = sorted(n for n in imports[target]["new"] if n.split(".")[0] == PKG and n not in PARSE_MODULES)
        assert not extra, f"parsing {Path(target).name} now also loads {extra}: import them where they are used"
    used = {n for t in imports if t.endswith(".py") for n in imports[t]["new"] if n.split(".")[0] == PKG}
    assert used >= PARSE_MODULES - {PKG, *BUILD_TIME}, "the pin lists modules no parse loads: shrink it"


def test_heavy_matcher() -> None:
    """The matcher catches what it should and nothing else (a test of the test)."""
    assert _heavy([f"{PKG}.hooks._api_models", f"{PKG}.waiting.sync", "requests.adapters", f"{PKG}.operators.base",
                   f"{PKG}.hooks", "requests_toolbelt", f"{PKG}.triggers.training"]) == [
        f"{PKG}.hooks._api_models", f"{PKG}.waiting.sync", "requests.adapters", f"{PKG}.triggers.training"]


def test_parse_path_defines_no_costly_classes() -> None:
    """The modules a parse loads define no dataclass, no NamedTuple and no enum built by the ``Enum`` metaclass.

    Each costs ~0.2-0.8 ms to define on Python 3.11, in every forked parse (a ``@dataclass`` compiles its methods, a
    ``NamedTuple`` each string annotation, the metaclass checks every member; ``_compat.str_enum`` builds enums ~8x
    faster); ``operators.base.Number`` is a plain class for that reason."""
    import enum
    import importlib

    from airflow_provider_bria import _compat

    costly = []
    for name in sorted(PARSE_MODULES - set(BUILD_TIME)):
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if not isinstance(obj, type) or obj.__module__ != name:
                continue
            named_tuple = issubclass(obj, tuple) and hasattr(obj, "_fields")
            fast = [b for b in obj.__mro__ if b.__module__ == _compat.__name__ and b.__name__ == "_StrEnum"]
            slow_enum = issubclass(obj, enum.Enum) and not fast  # by name: a test may reload _compat
            dataclass = "__dataclass_fields__" in vars(obj)  # decorated itself (Airflow's operators inherit the field)
            if dataclass or named_tuple or slow_enum:
                costly.append(f"{name}.{attr}")
    assert not costly, f"defined on every parse: {costly}; move them where they are used or use a plain class"
