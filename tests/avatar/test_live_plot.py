"""LivePlot: the history it records from trainer metrics (faked, then a real 2-step fit), the
figure and widget it draws, and the errors that name bad arguments."""

from __future__ import annotations

import base64
import logging
import sys
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("lightning")
pytest.importorskip("matplotlib")

from lightning.pytorch import LightningModule, Trainer  # noqa: E402

from avatar.lit.live_plot import LivePlot  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _trainer(step: int, metrics: dict[str, float], *, sanity: bool = False) -> SimpleNamespace:
    """The three attributes LivePlot reads from a Trainer."""
    tensors = {k: torch.tensor(v) for k, v in metrics.items()}
    return SimpleNamespace(global_step=step, callback_metrics=tensors, sanity_checking=sanity)


def _shown_png(live: LivePlot) -> bytes:
    """The PNG the widget's Output holds."""
    (output,) = live.widget.children[1].outputs
    return base64.b64decode(output["data"]["image/png"])


def test_records_fake_trainer_metrics_per_step_epoch_and_validation():
    live = LivePlot(["train/loss", "val/loss", "val/offset_acc"], redraw_every_s=0, show=False)
    # a sanity check is not recorded; step values win over epoch ones during training
    live.on_validation_end(_trainer(0, {"val/loss": 9.0}, sanity=True), None)
    live.on_train_batch_end(
        _trainer(1, {"train/loss_step": 2.0, "train/loss": 2.0}), None, {}, {}, 0
    )
    live.on_train_batch_end(
        _trainer(2, {"train/loss_step": 1.5, "train/loss_epoch": 3.0}), *[None] * 4
    )
    live.on_train_epoch_end(_trainer(2, {"train/loss_step": 1.5, "train/loss_epoch": 1.75}), None)
    live.on_validation_end(_trainer(2, {"val/loss": 1.625, "val/offset_acc": 0.5}), None)
    assert live.history == {
        "train/loss": [(1, 2.0), (2, 1.5)],
        "train/loss_epoch": [(2, 1.75)],
        "val/loss": [(2, 1.625)],
        "val/offset_acc": [(2, 0.5)],
    }
    assert "val/loss 1.625 (step 2)" in live.status()


def test_figure_has_one_panel_per_metric_name_with_its_lines():
    live = LivePlot(["train/loss", "val/loss", "val/offset_acc"], title="run", show=False)
    for step, value in ((1, 3.0), (2, 2.0), (3, 1.0)):
        live.record("train/loss", step, value)
    live.record("val/loss", 3, 1.2)
    fig = live.figure()
    loss, acc = fig.axes
    assert loss.get_ylabel() == "loss" and acc.get_ylabel() == "offset_acc"
    assert [line.get_label() for line in loss.get_lines()] == ["train/loss", "val/loss"]
    assert list(loss.get_lines()[0].get_ydata()) == [3.0, 2.0, 1.0]
    assert not acc.get_lines() and acc.texts[0].get_text() == "no values yet"
    assert fig.get_suptitle() == "run"
    assert live.png().startswith(PNG_MAGIC)


def test_widget_shows_the_latest_plot():
    pytest.importorskip("ipywidgets")
    live = LivePlot(redraw_every_s=3600, show=False)
    assert live.widget.children[1].outputs == ()  # nothing drawn before the first step
    live.on_train_batch_end(_trainer(1, {"train/loss": 1.0}), *[None] * 4)
    assert _shown_png(live).startswith(PNG_MAGIC) and live.redraws == 1
    live.on_train_batch_end(_trainer(2, {"train/loss": 0.5}), *[None] * 4)
    assert live.redraws == 1  # within redraw_every_s: recorded, not redrawn
    live.on_validation_end(_trainer(2, {"val/loss": 0.7}), None)
    assert live.redraws == 2 and "val/loss 0.7" in live.widget.children[0].value
    bundle = live._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


class _Tiny(LightningModule):
    """y = w x fitted by SGD; logs train/loss per step and epoch, val/loss per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        return ((self.w * batch - 2 * batch) ** 2).mean()

    def training_step(self, batch: torch.Tensor, idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: torch.Tensor, idx: int) -> None:
        self.log("val/loss", self._loss(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(torch.ones(4, 1), batch_size=2)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(torch.ones(2, 1), batch_size=2)


def test_two_step_fit_records_the_losses_and_draws(tmp_path, caplog):
    pytest.importorskip("ipywidgets")
    torch.manual_seed(0)
    live = LivePlot(["train/loss", "val/loss", "val/missing"], redraw_every_s=0, show=False)
    live.widget  # noqa: B018 (built before fitting: every redraw reaches it)
    trainer = Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
        default_root_dir=tmp_path,
        callbacks=[live],
    )
    with caplog.at_level(logging.WARNING, logger="avatar.lit.live_plot"):
        trainer.fit(_Tiny())
    # one epoch of two steps: loss (w x - 2x)^2 with x = 1 starts at 4 and falls
    steps, values = zip(*live.history["train/loss"], strict=True)
    assert steps == (1, 2) and values[0] == pytest.approx(4.0) and values[1] < values[0]
    assert [s for s, _ in live.history["train/loss_epoch"]] == [2]
    assert live.history["train/loss_epoch"][0][1] == pytest.approx(sum(values) / 2)
    (val,) = live.history["val/loss"]  # the sanity check is not recorded
    assert val[0] == 2 and val[1] < values[1]
    assert "val/missing" not in live.history and "never logged" in caplog.text
    assert _shown_png(live).startswith(PNG_MAGIC) and live.redraws >= 3


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"metrics": "train/loss"}, TypeError, "list of names"),
        ({"metrics": []}, ValueError, "empty"),
        ({"metrics": ["loss"]}, ValueError, "'loss' is not '<stage>/<name>'"),
        ({"metrics": ["test/loss"]}, ValueError, "'test/loss'"),
        ({"metrics": ["train/"]}, ValueError, "'train/'"),
        ({"metrics": [3]}, TypeError, "strings, got 3"),
        ({"metrics": ["val/loss", "val/loss"]}, ValueError, "twice"),
        ({"redraw_every_s": -1}, ValueError, "redraw_every_s must be >= 0"),
        ({"redraw_every_s": "1"}, TypeError, "redraw_every_s must be seconds"),
        ({"width": 0}, ValueError, "width"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        LivePlot(**kwargs)


def test_bad_step_is_named():
    live = LivePlot(show=False)
    with pytest.raises(ValueError, match="step must be a whole number >= 0, got -1"):
        live.record("train/loss", -1, 1.0)


def test_shows_itself_in_a_kernel_and_records_without_ipywidgets(monkeypatch, caplog):
    pytest.importorskip("ipywidgets")
    import avatar.lit.live_plot as live_plot

    shown = []
    monkeypatch.setattr(live_plot, "_in_ipython", lambda: True)
    monkeypatch.setattr("IPython.display.display", shown.append)
    LivePlot(show=False).on_fit_start(None, None)
    assert shown == []  # show=False: never displayed
    live = LivePlot()
    live.on_fit_start(None, None)
    assert shown == [live]
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # the lab extra missing
    bare = LivePlot()
    with caplog.at_level(logging.WARNING, logger="avatar.lit.live_plot"):
        bare.on_fit_start(None, None)
    assert "no ipywidgets" in caplog.text and shown == [live]
    bare.on_train_batch_end(_trainer(1, {"train/loss": 1.0}), *[None] * 4)
    assert bare.history == {"train/loss": [(1, 1.0)]}
