"""The documentation site builds with ``mkdocs build --strict`` (every nav page exists, every link resolves)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_mkdocs_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    for page in ("index.html", "quickstart/index.html", "example-dags/index.html", "troubleshooting/index.html"):
        assert (site / page).is_file(), page


def test_every_docs_page_is_in_the_nav() -> None:
    nav = (REPO / "mkdocs.yml").read_text()
    listed = set(re.findall(r":\s*([\w-]+\.md)\s*$", nav, flags=re.MULTILINE))
    present = {p.name for p in (REPO / "docs").glob("*.md")}
    assert present <= listed, f"pages missing from the nav: {sorted(present - listed)}"
    expected = {
        "index.md",
        "quickstart.md",
        "connection.md",
        "hook.md",
        "operators.md",
        "upload.md",
        "training.md",
        "generation.md",
        "example-dags.md",
        "ui.md",
        "emulator.md",
        "api-choices.md",
        "security.md",
        "troubleshooting.md",
        "system-tests.md",
        "benchmarks.md",
        "reference.md",
        "your-first-dag.md",
        "deployment.md",
        "compatibility.md",
        "architecture.md",
    }
    assert listed == expected
