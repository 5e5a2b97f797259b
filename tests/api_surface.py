"""The provider's public API surface as sorted text lines, and the golden file that pins it.

``python -m tests.api_surface --write`` (from the repository root) rewrites ``tests/api_surface.txt`` from the
installed code; ``tests/test_api_surface.py`` compares the live surface to that file and prints a diff.

One fact per line, ``<public path> | <fact>``:

* every public class importable from its public module, and the public functions of ``assets`` (a module's
  ``__all__`` when it has one, else what the module defines itself; anything already pinned stays pinned
  wherever it is defined now, so a class moved to a private module and re-exported still passes);
* each class's ``__init__`` parameters (name, kind, default; annotations are not pinned), the order of its
  positional parameters, the user-visible class attributes it or a provider base class sets
  (``template_fields``, ``template_ext``, ``ui_color``, ``operator_extra_links``, connection attributes...),
  its Airflow base classes and pinned provider ancestors, enum members and ``TypedDict`` keys;
* ``BriaHook``'s public methods (signatures as above: users call them);
* trigger classpaths (what ``serialize()`` writes and the triggerer imports after an upgrade);
* ``get_provider_info()`` (all but the version) and the package's entry points, each of which must import.

Run this where the test suite's Airflow settings apply (``python -m`` sets a throw-away ``AIRFLOW_HOME`` when
none is set): ``deferrable`` defaults read ``[operators] default_deferrable`` at import time.
"""

from __future__ import annotations

import argparse
import difflib
import enum
import importlib
import inspect
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, is_typeddict

import tomllib

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).with_name("api_surface.txt")
PKG = "airflow_provider_bria"

#: Modules users import from (the providers manager's lists, links, assets, errors, results, the contract).
PUBLIC_MODULES = (
    f"{PKG}.hooks.bria",
    f"{PKG}.operators.base",
    f"{PKG}.operators.project",
    f"{PKG}.operators.dataset",
    f"{PKG}.operators.captions",
    f"{PKG}.operators.upload",
    f"{PKG}.operators.model",
    f"{PKG}.operators.training",
    f"{PKG}.operators.generation",
    f"{PKG}.sensors.training",
    f"{PKG}.triggers.training",
    f"{PKG}.triggers.job",
    f"{PKG}.triggers.upload",
    f"{PKG}.links.bria",
    f"{PKG}.assets",
    f"{PKG}.exceptions",
    f"{PKG}.results",
    f"{PKG}.contract",
    f"{PKG}.plugins",
)

#: Modules whose public functions are pinned (elsewhere only classes, and functions named in ``__all__``).
FUNCTION_MODULES = (f"{PKG}.assets",)

#: Where older Airflow lines get the methods newer ones have (e.g. ``BaseHook.aget_connection`` on 3.0).
COMPAT_SHIMS = "airflow_provider_bria._compat"

#: Classes whose public methods are pinned too (not only ``__init__``).
METHODS_PINNED = (f"{PKG}.hooks.bria.BriaHook",)

#: Class attributes users see (DAG authors, the UI, the connection form, the providers manager).
CLASS_ATTRS = (
    "template_fields",
    "template_ext",
    "template_fields_renderers",
    "ui_color",
    "ui_fgcolor",
    "custom_operator_name",
    "operator_extra_links",
    "conn_name_attr",
    "default_conn_name",
    "conn_type",
    "hook_name",
    "name",
    "key",
    "poke_context_fields",
)

#: Airflow base classes named in the ``ancestors`` line (by name: their module differs between Airflow lines).
AIRFLOW_BASES = frozenset({
    "AirflowException", "AirflowFailException", "AirflowSkipException", "AirflowPlugin", "BaseHook",
    "BaseOperator", "BaseOperatorLink", "BaseSensorOperator", "BaseTrigger",
})

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _is_ours(obj: Any) -> bool:
    return (inspect.isclass(obj) or inspect.isfunction(obj)) and (
        getattr(obj, "__module__", "") or "").startswith(PKG)


def _default(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return "<required>"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return _ADDRESS.sub("", repr(value))


def _signature_lines(label: str, func: Callable[..., Any], skip_self: bool) -> list[str]:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return [f"{label} <no signature>"]
    if skip_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    lines = [f"{label} param {p.name}: {p.kind.name}"
             + ("" if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) else f" = {_default(p.default)}") for p in params]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    lines.append(f"{label} positional order: ({', '.join(positional)})")
    return lines


def _attr_value(name: str, value: Any) -> str:
    if name == "operator_extra_links":
        return repr(sorted(type(link).__name__ for link in value))
    if isinstance(value, (list, tuple, set, frozenset)) and name != "template_fields":
        value = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
    elif isinstance(value, tuple):
        value = list(value)
    return _ADDRESS.sub("", repr(value))


def _ancestor_lines(path: str, cls: type, pinned_names: set[str]) -> list[str]:
    names: list[str] = []
    for base in cls.__mro__[1:]:
        module = base.__module__ or ""
        if module.startswith(PKG):
            if base.__name__ in pinned_names:
                names.append(base.__name__)
        elif module in ("builtins", "enum") and base is not object or base.__name__ in AIRFLOW_BASES:
            names.append(base.__name__)
    return [f"{path} | ancestors: {', '.join(sorted(set(names)))}"]


def _class_lines(path: str, cls: type, pinned_names: set[str]) -> list[str]:
    lines = [f"{path} | class"]
    lines += _ancestor_lines(path, cls, pinned_names)
    if issubclass(cls, enum.Enum):
        lines += [f"{path} | member {m.name} = {m.value!r}" for m in cls]
        return lines
    if is_typeddict(cls):
        required = getattr(cls, "__required_keys__", frozenset())
        lines += [f"{path} | key {key}{'' if key in required else ' (optional)'}" for key in cls.__annotations__]
        return lines
    if "BaseTrigger" in {b.__name__ for b in cls.__mro__}:
        lines.append(f"{path} | trigger classpath {cls.__module__}.{cls.__qualname__}")
    ours = [c for c in cls.__mro__ if (c.__module__ or "").startswith(PKG)]
    for attr in CLASS_ATTRS:
        if any(attr in vars(c) for c in ours):
            lines.append(f"{path} | {attr} = {_attr_value(attr, getattr(cls, attr))}")
    if not issubclass(cls, BaseException) and any("__init__" in vars(c) for c in ours):
        lines += _signature_lines(f"{path} | __init__", cls.__init__, skip_self=True)
    if path in METHODS_PINNED:
        for name in sorted(dir(cls)):
            member = inspect.getattr_static(cls, name)
            owner = next((c for c in cls.__mro__ if name in vars(c)), None)
            if name.startswith("_") or owner is None or not (owner.__module__ or "").startswith(PKG):
                continue
            if owner.__module__ == COMPAT_SHIMS:  # Airflow's own API, back-filled on older lines: not ours to pin
                continue
            func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
            if isinstance(member, property):
                lines.append(f"{path} | property {name}")
            elif inspect.isfunction(func):
                lines += _signature_lines(f"{path} | method {name}", func,
                                          skip_self=not isinstance(member, staticmethod))
    return lines


def _public_names(module: Any, pinned: set[str]) -> Iterable[str]:
    declared = getattr(module, "__all__", None)
    members = dict(vars(module))
    for name in declared or ():  # names a module ``__getattr__`` re-exports on first access (not loaded at parse)
        if name not in members and hasattr(module, name):
            members[name] = getattr(module, name)
    for name, obj in members.items():
        if name.startswith("_") or not _is_ours(obj):
            continue
        path = f"{module.__name__}.{name}"
        if declared is not None:
            public = name in declared
        else:
            public = obj.__module__ == module.__name__ and (
                inspect.isclass(obj) or module.__name__ in FUNCTION_MODULES)
        if public or path in pinned:
            yield name


def _provider_info_lines() -> list[str]:
    from airflow_provider_bria.get_provider_info import get_provider_info

    info = get_provider_info()
    info.pop("versions", None)
    lines = [f"get_provider_info | {key} = {json.dumps(info[key], sort_keys=True)}" for key in sorted(info)]
    modules = [m for group in ("hooks", "operators", "sensors", "triggers") for entry in info.get(group, [])
               for m in entry["python-modules"]]
    classes = [c["hook-class-name"] for c in info.get("connection-types", [])] + list(info.get("extra-links", []))
    for module in modules:
        importlib.import_module(module)
        lines.append(f"get_provider_info | imports module {module}")
    for classpath in classes:
        module, _, name = classpath.rpartition(".")
        getattr(importlib.import_module(module), name)
        lines.append(f"get_provider_info | imports class {classpath}")
    return lines


def _entry_point_lines() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    groups = {**project.get("entry-points", {}), "console_scripts": project.get("scripts", {})}
    lines = []
    for group in sorted(groups):
        for name, target in sorted(groups[group].items()):
            module, _, attr = target.partition(":")
            getattr(importlib.import_module(module), attr)
            lines.append(f"entry point | {group}: {name} = {target}")
    return lines


def pinned_paths(lines: Iterable[str]) -> set[str]:
    """The object paths a surface pins (the part of each line before `` | ``)."""
    return {line.split(" | ", 1)[0] for line in lines if line.startswith(PKG)}


def surface(pinned: set[str] | None = None) -> list[str]:
    """The live public surface, sorted; objects in ``pinned`` are included wherever they are defined now."""
    pinned = set(pinned or ())
    objects: dict[str, Any] = {}
    lines: list[str] = []
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in _public_names(module, pinned):
            objects[f"{modname}.{name}"] = getattr(module, name)
    for path in sorted(pinned - set(objects)):
        lines.append(f"{path} | MISSING (not importable from its public path)")
    pinned_names = {p.rpartition(".")[2] for p in (pinned | set(objects))}
    for path, obj in sorted(objects.items()):
        if inspect.isclass(obj):
            lines += _class_lines(path, obj, pinned_names)
        else:
            lines.append(f"{path} | function")
            lines += _signature_lines(f"{path} | signature", obj, skip_self=False)
    lines += _provider_info_lines() + _entry_point_lines()
    return sorted(lines)


def read_golden(path: Path = GOLDEN) -> list[str]:
    """The committed surface (comment lines dropped)."""
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def diff(golden: list[str], live: list[str]) -> str:
    """A unified diff, golden file to live surface (empty when equal)."""
    return "\n".join(difflib.unified_diff(golden, live, "tests/api_surface.txt (pinned)", "live surface",
                                          lineterm="", n=0))


def write(path: Path = GOLDEN) -> None:
    """Rewrite the golden file; everything it already pins stays pinned."""
    old = pinned_paths(read_golden(path)) if path.exists() else set()
    header = ("# Public API surface of airflow-provider-bria, pinned by tests/test_api_surface.py.\n"
              "# Regenerate: python -m tests.api_surface --write (and note the API change in CHANGELOG.md).\n")
    path.write_text(header + "\n".join(surface(old)) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``--write`` rewrites the golden file; without it, print the diff and exit 1 when they differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite tests/api_surface.txt")
    args = parser.parse_args(argv)
    if "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="bria-api-surface-")
    os.environ.pop("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", None)
    if args.write:
        write()
        print(f"wrote {GOLDEN}")
        return 0
    golden = read_golden()
    text = diff(golden, surface(pinned_paths(golden)))
    print(text or "public API surface unchanged")
    return 1 if text else 0


if __name__ == "__main__":
    sys.exit(main())
