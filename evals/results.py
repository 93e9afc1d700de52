"""Writing eval results: strict JSON (NaN -> null), a per-clip CSV, renderers side by side."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["json_ready", "side_by_side", "table", "text_table", "write_csv", "write_json"]


def json_ready(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars and paths -> Python, recursively (strict JSON).

    Example:
        >>> json_ready({"a": float("nan"), "b": [np.float32(1.5), Path("x")]})
        {'a': None, 'b': [1.5, 'x']}
    """
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Writes ``data`` as indented strict JSON (atomic: temp file then rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(json_ready(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def table(rows: Sequence[Mapping[str, Any]], first: Sequence[str] = ()) -> tuple[list[str], list]:
    """(columns, rows as lists): ``first`` columns, then every other key sorted; blanks None."""
    keys = sorted({k for row in rows for k in row} - set(first))
    columns = [*first, *keys]
    return columns, [[json_ready(row.get(c)) for c in columns] for row in rows]


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], first: Sequence[str] = ()) -> Path:
    """Writes one row per mapping, columns as :func:`table` (None as an empty cell)."""
    columns, data = table(rows, first)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in row] for row in data])
    return path


def side_by_side(metrics: Mapping[str, Any], renderers: Sequence[str]) -> list[dict[str, Any]]:
    """Rows ``{"metric": "<group>/<metric>", <renderer>: value, ...}`` from flat run metrics
    ``<renderer>/<group>/<metric>``: every metric of every renderer, one row each, sorted
    (None where a renderer lacks it), so renderers compare column by column.

    Example:
        >>> side_by_side({"a/lip/x": 1.0, "b/lip/x": 2.0, "b/id/y": 3.0}, ["a", "b"])
        [{'metric': 'id/y', 'a': None, 'b': 3.0}, {'metric': 'lip/x', 'a': 1.0, 'b': 2.0}]
    """
    names = sorted({k.split("/", 1)[1] for k in metrics if k.split("/", 1)[0] in renderers})
    return [{"metric": m, **{r: metrics.get(f"{r}/{m}") for r in renderers}} for m in names]


def text_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as aligned plain text (numbers to 4 significant digits, '-' for None).

    Example:
        >>> print(text_table([{"metric": "lip/x", "a": 0.123456, "b": None}], ["metric", "a", "b"]))
        metric  a       b
        lip/x   0.1235  -
    """
    cells = [[str(c) for c in columns]]
    for row in rows:
        values = [row.get(c) for c in columns]
        cells.append(
            ["-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in values]
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )
