"""Every notebook runs top to bottom in smoke mode (small, CPU), with nbclient; notebooks are
committed without outputs; those that render write their MP4, and each saves its widgets' state
(so an HTML export shows them) and shows a plot."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
RENDERS = {"00-tour.ipynb", "07-render-from-config.ipynb"}
"""Notebooks that render an MP4 (into their folder); the others stop before frames."""
WIDGET_MODELS = {
    "00-tour.ipynb": {"IntSliderModel", "ImageModel", "ButtonModel", "IntProgressModel"},
    "01-companion.ipynb": {"ToggleButtonsModel", "ImageModel"},
    "02-speech-and-motion.ipynb": {"DropdownModel", "FloatSliderModel", "OutputModel"},
    "03-evals.ipynb": {"ToggleButtonsModel", "FileUploadModel", "OutputModel"},
    "04-training.ipynb": {"OutputModel", "FloatProgressModel", "DropdownModel"},
    "05-real-time.ipynb": {"IntSliderModel", "ImageModel", "PlayModel"},
    "06-serve.ipynb": {"TextareaModel", "ButtonModel", "HTMLModel"},
    "07-render-from-config.ipynb": {"TextModel", "ButtonModel", "HTMLModel"},
}
"""Widget models a notebook's executed form must hold (its saved widget state), beyond the
widget view and the plot every notebook shows."""


def test_the_notebooks_are_there():
    names = {p.name for p in NOTEBOOKS}
    assert RENDERS | set(WIDGET_MODELS) <= names, names
    assert all(re.match(r"\d\d-", name) for name in names), "notebooks are numbered: NN-name"


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
def test_opens_with_its_purpose_and_closes_with_where_next(path):
    cells = nbformat.read(path, as_version=4).cells
    first, last = cells[0], cells[-1]
    number = path.name[:2]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {number} "), first.source
    assert last.cell_type == "markdown" and "## Where next" in last.source, last.source


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
    if path.name in RENDERS:
        assert any(tmp_path.rglob("*.mp4")), "the notebook wrote its MP4"
    assert os.environ["SMOKE"] == "1"
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    models = {m["model_name"] for m in state.values()}
    assert WIDGET_MODELS.get(path.name, set()) <= models, models
    assert any(WIDGET_VIEW in o.get("data", {}) for o in outputs), "a widget is shown"
    assert any("image/png" in o.get("data", {}) for o in outputs), "a plot"
