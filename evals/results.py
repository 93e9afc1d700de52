"""Writing eval results: strict JSON (NaN -> null) and a per-clip CSV."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["json_ready", "table", "write_csv", "write_json"]


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
