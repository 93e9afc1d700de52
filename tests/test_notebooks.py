"""Every notebook runs top to bottom in smoke mode (small, CPU), with nbclient."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch, identity_cache):
    monkeypatch.setenv("SMOKE", "1")
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(identity_cache))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    # run in a scratch folder holding the repo's configs via the installed package
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any(tmp_path.rglob("*.mp4")), "the notebook wrote its MP4"
    assert os.environ["SMOKE"] == "1"
