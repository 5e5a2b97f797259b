"""Re-render docs/benchmarks.md from the last complete run, after editing ``findings.md``.

A complete ``make bench`` writes the page and ``tests/artifacts/benchmarks.json`` (machine, duration, rows); this
renders the page again from that file and the current ``findings.md``, so a correction of the findings does not
need a new 15-minute run. The figures stay those of the run. Usage::

    python tests/benchmarks/render.py [ARTIFACT [OUTPUT]]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import benchlib

HERE = Path(__file__).resolve().parent


def render(artifact: Path, output: Path, findings: Path = HERE / "findings.md") -> str:
    """Write the page for ``artifact`` (a complete run's JSON) to ``output``; return the text.

    :param artifact: the run's ``benchmarks.json``.
    :param output: the Markdown page to write.
    :param findings: the findings appended to the page.
    """
    data = json.loads(artifact.read_text())
    results = [benchlib.BenchResult(**row) for row in data["results"]]
    text = benchlib.render_markdown(data["machine"], results, duration=float(data["duration_s"]),
                                    findings=findings.read_text() if findings.exists() else "",
                                    baseline=benchlib.load_baseline())
    output.write_text(text)
    return text


def main(argv: list[str]) -> None:
    artifact = Path(argv[0]) if argv else benchlib.REPO / "tests" / "artifacts" / "benchmarks.json"
    output = Path(argv[1]) if len(argv) > 1 else benchlib.REPO / "docs" / "benchmarks.md"
    render(artifact, output)
    print(f"Report written to {output}")


if __name__ == "__main__":
    main(sys.argv[1:])
