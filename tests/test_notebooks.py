"""Every notebook runs top to bottom in smoke mode (small, CPU), with nbclient; notebooks are
committed without outputs, and the tour saves its widgets' state and a plot."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def test_the_notebooks_are_there():
    assert {"00-tour.ipynb", "01-render-companion.ipynb"} <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs or execution counts; clear them"
    assert "widgets" not in nb.metadata, f"{path.name}: saved widget state; clear it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch, identity_cache):
    monkeypatch.setenv("SMOKE", "1")
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(identity_cache))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    # run in a scratch folder holding the repo's configs via the installed package
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, [f"{e['ename']}: {e['evalue']}" for e in errors]
    assert any(tmp_path.rglob("*.mp4")), "the notebook wrote its MP4"
    assert os.environ["SMOKE"] == "1"
    if path.name == "00-tour.ipynb":
        state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
        models = {m["model_name"] for m in state.values()}
        assert {"IntSliderModel", "ImageModel", "ButtonModel"} <= models, models
        assert any("image/png" in o.get("data", {}) for o in outputs), "the timeline plot"
        view = "application/vnd.jupyter.widget-view+json"
        assert any(view in o.get("data", {}) for o in outputs), "the widgets are shown"
