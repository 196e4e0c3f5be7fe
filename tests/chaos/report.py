"""The failure matrix as a table (scenario by broker) and as var/chaos/results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COLUMNS = ("placed", "shipped", "cancelled", "parked", "lost", "charged_twice")
RESULTS = Path(__file__).resolve().parents[2] / "var" / "chaos" / "results.json"


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table, so the same text goes to the terminal and into docs/reliability.md."""
    header = ["scenario", "broker", *COLUMNS, "result", "seconds"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in sorted(rows, key=lambda r: (r["scenario"], r["broker"])):
        cells = [row["scenario"], row["broker"], *(str(row.get(c, "")) for c in COLUMNS)]
        cells += [row["result"], f"{row['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(rows: list[dict[str, Any]], path: Path = RESULTS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sorted(rows, key=lambda r: (r["scenario"], r["broker"])), indent=2))
    return path
