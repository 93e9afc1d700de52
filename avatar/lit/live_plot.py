"""LivePlot: a Lightning callback that records the logged losses and redraws a loss plot.

In JupyterLab the plot lives in an ipywidgets ``Output`` (imported lazily: the ``lab`` extra)
and is redrawn while ``trainer.fit`` runs, beside Lightning's own progress bar; headless
(nbclient, a script) the same history is recorded and the last drawing stays in the widget's
saved state. The callback shows itself when fitting starts (``show=True`` inside IPython), so
it can be added from a config like any other callback and still appear in a notebook::

    python -m avatar.train ... +callbacks.live_plot._target_=avatar.lit.live_plot.LivePlot

    live = next(c for c in trainer.callbacks if isinstance(c, LivePlot))
    live.history["val/loss"]   # [(optimizer step, value), ...]
    live.figure()              # a matplotlib Figure (a PNG when a cell ends with it)

Metric names are those the LightningModule logs (``train/loss``, ``val/mouth_l1``, ...). A
training metric is read after every optimizer step (its ``_step`` value when it is logged both
per step and per epoch) and, when logged per epoch too, after every epoch under
``<name>_epoch``; a validation metric after every validation run (its epoch value; sanity
checks excepted). The x axis is ``trainer.global_step``.
Metrics are plotted in one panel per name after the stage (``loss``: train and val together).
"""

from __future__ import annotations

import base64
import io
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lightning.pytorch import Callback, LightningModule, Trainer

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = ["STAGES", "LivePlot"]

STAGES = ("train", "val")
"""Stages whose metrics the plot records (the prefix before the ``/`` of a metric name)."""

History = dict[str, list[tuple[int, float]]]
"""Metric name -> (optimizer step, value) pairs in the order they were recorded."""


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    """The metric names as a tuple, or a ValueError/TypeError naming the bad one."""
    if isinstance(metrics, str) or not isinstance(metrics, Sequence):
        raise TypeError(f"LivePlot: metrics must be a list of names, got {metrics!r}")
    if not metrics:
        raise ValueError("LivePlot: metrics is empty; name at least one, e.g. 'train/loss'")
    for name in metrics:
        if not isinstance(name, str):
            raise TypeError(f"LivePlot: metric names must be strings, got {name!r}")
        stage, _, rest = name.partition("/")
        if stage not in STAGES or not rest:
            raise ValueError(
                f"LivePlot: metric {name!r} is not '<stage>/<name>' with a stage in {STAGES}"
            )
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"LivePlot: metrics {list(metrics)} name one twice")
    return tuple(str(name) for name in metrics)


def _number(value: Any) -> float:
    """A logged value (tensor or number) as a float."""
    return float(value.item() if hasattr(value, "item") else value)


class LivePlot(Callback):
    """Records ``metrics`` during ``fit`` and redraws their plot in a notebook widget.

    Args:
        metrics: logged names, ``train/<name>`` or ``val/<name>``.
        redraw_every_s: least wall-clock seconds between redraws after training steps
            (validation runs and the end of fitting always redraw); 0: every step.
        title: the figure's title.
        show: display the widget when fitting starts, inside an IPython kernel.
        width: figure width, inches (each panel 2.6 inches high).

    Raises:
        ValueError, TypeError: a metric name not ``train/...``/``val/...``, an empty or
            repeated list, a negative ``redraw_every_s`` or a non-positive ``width``.
    """

    def __init__(
        self,
        metrics: Sequence[str] = ("train/loss", "val/loss"),
        *,
        redraw_every_s: float = 1.0,
        title: str = "",
        show: bool = True,
        width: float = 7.0,
    ) -> None:
        self.metrics = _check_metrics(metrics)
        if isinstance(redraw_every_s, bool) or not isinstance(redraw_every_s, int | float):
            raise TypeError(f"LivePlot: redraw_every_s must be seconds, got {redraw_every_s!r}")
        if not redraw_every_s >= 0:
            raise ValueError(f"LivePlot: redraw_every_s must be >= 0, got {redraw_every_s}")
        if isinstance(width, bool) or not isinstance(width, int | float) or not width > 0:
            raise ValueError(f"LivePlot: width must be a positive number of inches, got {width!r}")
        self.redraw_every_s, self.title, self.show = float(redraw_every_s), title, bool(show)
        self.width = float(width)
        self.history: History = {}
        self.redraws = 0
        self._last_draw = -math.inf
        self._widget: Any = None

    # --- the widget -----------------------------------------------------------------------

    @property
    def widget(self) -> Any:
        """An ipywidgets ``VBox``: a status line over an ``Output`` holding the plot."""
        if self._widget is None:
            import ipywidgets  # the lab extra: pip install -e '.[lab]'

            self._status = ipywidgets.HTML(value="<i>waiting for the first step</i>")
            self._output = ipywidgets.Output()
            self._widget = ipywidgets.VBox([self._status, self._output])
            if self.history:
                self._draw()
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def status(self) -> str:
        """The last value of each metric and the step it was recorded at, in one line."""
        parts = [
            f"{name} {points[-1][1]:.4g} (step {points[-1][0]})"
            for name, points in self.history.items()
        ]
        return " · ".join(parts) or "no metrics recorded yet"

    def png(self, dpi: int = 90) -> bytes:
        """The current figure as PNG bytes."""
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()

    def _draw(self) -> None:
        """Put the current figure (a PNG) and status into the widget, once it exists."""
        self._last_draw = time.monotonic()
        if self._widget is None:
            return
        data = base64.b64encode(self.png()).decode("ascii")
        shown = {"image/png": data, "text/plain": f"<LivePlot: {self.status()}>"}
        self._output.outputs = ({"output_type": "display_data", "data": shown, "metadata": {}},)
        self._status.value = self.status()
        self.redraws += 1

    def redraw(self, force: bool = False) -> None:
        """Redraw if ``redraw_every_s`` has passed since the last drawing (or ``force``)."""
        if force or time.monotonic() - self._last_draw >= self.redraw_every_s:
            self._draw()

    # --- the figure -----------------------------------------------------------------------

    def figure(self) -> Figure:
        """One panel per metric name after the stage (``loss``: ``train/loss`` and ``val/loss``),
        x: optimizer steps. A matplotlib ``Figure`` outside pyplot (a PNG when shown)."""
        from matplotlib.figure import Figure

        panels: dict[str, list[str]] = {}
        for name in self.metrics:
            panels.setdefault(name.partition("/")[2], []).append(name)
        fig = Figure(figsize=(self.width, 2.6 * len(panels)), layout="constrained")
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (panel, names) in zip(axes, panels.items(), strict=True):
            for name in names:
                style = {"lw": 1.0} if name.startswith("train/") else {"marker": "o", "lw": 1.5}
                for key, label, extra in (
                    (name, name, style),
                    (f"{name}_epoch", f"{name} (epoch mean)", {"marker": "s", "ls": "--"}),
                ):
                    points = self.history.get(key)
                    if points:
                        steps, values = zip(*points, strict=True)
                        ax.plot(steps, values, label=label, **extra)
            ax.set_ylabel(panel)
            if ax.has_data():
                ax.legend(loc="upper right", fontsize=8)
            else:
                ax.text(0.5, 0.5, "no values yet", ha="center", va="center", transform=ax.transAxes)
        axes[-1].set_xlabel("optimizer step")
        if self.title:
            fig.suptitle(self.title)
        return fig

    # --- recording ------------------------------------------------------------------------

    def record(self, name: str, step: int, value: float) -> None:
        """Append ``(step, value)`` to ``history[name]``."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"LivePlot: step must be a whole number >= 0, got {step!r}")
        self.history.setdefault(name, []).append((step, float(value)))

    def _read(self, metrics: Mapping[str, Any], step: int, stage: str, *, epoch: bool) -> None:
        """Record this stage's metrics from ``trainer.callback_metrics``-like ``metrics``."""
        for name in (m for m in self.metrics if m.startswith(f"{stage}/")):
            if epoch:  # a training metric logged per epoch too
                if f"{name}_epoch" in metrics:
                    self.record(f"{name}_epoch", step, _number(metrics[f"{name}_epoch"]))
                continue
            suffix = "_step" if stage == "train" else "_epoch"  # when logged both ways
            key = next((k for k in (f"{name}{suffix}", name) if k in metrics), None)
            if key is not None:
                self.record(name, step, _number(metrics[key]))

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not (self.show and _in_ipython()):
            return
        try:
            self.widget  # noqa: B018 (built here, so that a missing extra is reported once)
        except ImportError:
            log.warning("LivePlot: no ipywidgets (the lab extra); recording without a plot")
            return
        from IPython.display import display

        display(self)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._read(trainer.callback_metrics, trainer.global_step, "train", epoch=False)
        self.redraw()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._read(trainer.callback_metrics, trainer.global_step, "train", epoch=True)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._read(trainer.callback_metrics, trainer.global_step, "val", epoch=False)
        self.redraw(force=True)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.redraw(force=True)
        never = [
            m for m in self.metrics if not (self.history.get(m) or self.history.get(f"{m}_epoch"))
        ]
        if never:  # a typo, or a metric the module does not log
            logged = sorted(k for k in trainer.callback_metrics if k.partition("/")[0] in STAGES)
            log.warning("LivePlot: %s never logged; the run logged %s", never, logged)


def _in_ipython() -> bool:
    """Whether an IPython shell (a notebook kernel) runs this process."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None
