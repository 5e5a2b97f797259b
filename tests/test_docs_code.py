"""Docs code runs (issue 15 item 2): every Python block in docs/ is executed, or marked illustrative with a reason.

The blocks of a page run in order in one namespace (as a reader would paste them), against the emulator
(``bria_default`` points at it), so an import, an operator argument or a hook call that stops working fails
here. A block that cannot run on its own (a fragment, a signature, an event's shape, a cloud source) is preceded
by ``<!-- illustrative: <reason> -->``; the reason is required. docs/your-first-dag.md is also run as a reader
follows it by tests/system/test_system_8_your_first_dag.py.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(
    r"(?ms)^(?P<marker>[ \t]*<!-- illustrative:(?P<reason>[^>]*)-->\n)?[ \t]*```python\n(?P<code>.*?)```"
)


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())


def blocks(page: Path) -> list[tuple[str | None, str]]:
    """``(illustrative reason or None, code)`` of each Python block of a page, in order."""
    return [(m.group("reason").strip() if m.group("marker") else None, textwrap.dedent(m.group("code")))
            for m in BLOCK.finditer(page.read_text())]


def test_every_python_block_is_found() -> None:
    for page in _pages():
        assert len(blocks(page)) == page.read_text().count("```python"), page.name


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_docs_python_blocks_run(page: Path, bria_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    ran = 0
    for index, (reason, code) in enumerate(blocks(page)):
        if reason is not None:
            assert len(reason) >= 10, f"{page.name} block {index}: an illustrative block needs a reason"
            continue
        try:
            exec(compile(code, f"{page.name}[python block {index}]", "exec"), namespace)  # noqa: S102
        except Exception as err:  # noqa: BLE001 - reported with the block
            pytest.fail(f"{page.name} python block {index} fails ({type(err).__name__}: {err}); fix it or mark "
                        f"it <!-- illustrative: reason -->:\n{code}")
        ran += 1
    assert ran or all(r is not None for r, _ in blocks(page))
