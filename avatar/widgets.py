"""Notebook widgets for the workbench: pick a companion, render, scrub frames, plot a timeline.

ipywidgets is imported lazily: ``import avatar`` never needs it (the ``lab`` extra). Every
widget is a plain object holding its ipywidgets under ``.widget``, so it is built and driven
without a kernel (tests/avatar/test_widgets.py); a notebook shows it by ending
a cell with it (``_repr_mimebundle_``).

    picker = CompanionPicker()
    panel = RenderPanel(picker)              # Render button -> MP4 shown inline
    result = panel.render()                  # or click; panel.result holds the RenderResult
    FrameScrubber(result)                    # slider over frames, landmarks, channel values
    timeline_figure(result)                  # waveform, phones, visemes, mouth, eyes, head

``timeline_figure`` lives in :mod:`avatar.timeline_plot`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avatar.companion import CompanionSpec, configs_dir, load_companion
from avatar.timeline_plot import timeline_figure

if TYPE_CHECKING:
    from avatar.pipeline import Pipeline
    from avatar.render_result import RenderResult

__all__ = ["CompanionPicker", "FrameScrubber", "RenderPanel", "default_pipeline_maker"]
__all__ += ["built_in_companions", "built_in_renderers", "png_bytes", "timeline_figure"]
__all__ += ["video_html"]

SHOWN_CHANNELS = ("jaw_open", "lip_open", "lip_round", "lip_press", "smile")
SHOWN_CHANNELS += ("blink_l", "blink_r", "gaze_x", "head_yaw", "head_pitch")
"""Channels the frame scrubber lists at each frame (those the track has)."""

SIZES = (128, 256, 384, 512)


def _ipywidgets() -> Any:
    import ipywidgets  # the lab extra: pip install -e '.[lab]'

    return ipywidgets


class _Shown:
    """Displays as its ``widget`` in a notebook."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def built_in_companions() -> list[str]:
    """Names of the companions in ``configs/companion/`` (``load_companion(name)`` loads one)."""
    return sorted(p.stem for p in (configs_dir() / "companion").glob("*.yaml"))


def built_in_renderers() -> list[str]:
    """Names of the renderers in ``configs/renderer/`` (the ``renderer=<name>`` override)."""
    return sorted(p.stem for p in (configs_dir() / "renderer").glob("*.yaml"))


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 RGB image as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def video_html(path: str | Path, *, width: int = 384) -> str:
    """An HTML ``<video>`` with the MP4 embedded as base64 (kept in a saved notebook)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<video controls width="{width}" src="data:video/mp4;base64,{data}"></video>'


class CompanionPicker(_Shown):
    """A built-in companion (dropdown) or an uploaded image (which wins once uploaded).

    Args:
        default: the built-in selected first.
        upload_dir: where uploaded images are written (a temporary folder by default).
    """

    def __init__(self, default: str = "default", *, upload_dir: str | Path | None = None) -> None:
        w = _ipywidgets()
        names = built_in_companions()
        self.upload_dir = Path(upload_dir or Path(tempfile.gettempdir()) / "avatar-uploads")
        first = default if default in names else names[0]
        self.dropdown = w.Dropdown(options=names, value=first, description="built-in")
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="or an image")
        self.clear = w.Button(description="use built-in", icon="undo")
        self.status = w.HTML()
        self.clear.on_click(lambda _: setattr(self.upload, "value", ()))
        self.dropdown.observe(lambda _: self._update(), names="value")
        self.upload.observe(lambda _: self._update(), names="value")
        self.widget = w.VBox([w.HBox([self.dropdown, self.upload, self.clear]), self.status])
        self._update()

    def _update(self) -> None:
        spec = self.spec
        self.status.value = f"<b>{spec.name}</b> ({spec.id}): {', '.join(spec.images)}"

    @property
    def spec(self) -> CompanionSpec:
        """The picked companion: the uploaded image's, else the built-in's."""
        if self.upload.value:
            item = self.upload.value[0]
            data = bytes(item["content"])
            digest = hashlib.sha256(data).hexdigest()[:12]
            self.upload_dir.mkdir(parents=True, exist_ok=True)
            path = self.upload_dir / f"{digest}{Path(item['name']).suffix.lower() or '.png'}"
            path.write_bytes(data)
            name = Path(item["name"]).stem or "uploaded"
            return CompanionSpec(id=f"upload-{digest}", name=name, images=[str(path)])
        return load_companion(self.dropdown.value)


PipelineMaker = Callable[[int, int, str], "Pipeline"]
"""(size in pixels, motion seed, renderer name) -> Pipeline."""


def default_pipeline_maker(overrides: Sequence[str] = ()) -> PipelineMaker:
    """Pipelines from ``configs/render.yaml`` + ``overrides`` with a renderer, a size and a
    motion seed, one per (size, seed, renderer), kept for reuse."""
    made: dict[tuple[int, int, str], Pipeline] = {}

    def make(size: int, seed: int, renderer: str = "meshwarp") -> Pipeline:
        key = (size, seed, renderer)
        if key not in made:
            from avatar.config import compose, pipeline_from_config

            chosen = [f"renderer={renderer}", f"renderer.size={size}", f"motion.seed={seed}"]
            made[key] = pipeline_from_config(compose("render", [*overrides, *chosen]))
        return made[key]

    return make


class RenderPanel(_Shown):
    """Text, emotion and intensity, seed, size, renderer; a Render button, a progress bar over
    the frames, the MP4 inline.

    Args:
        companion: a picker, a spec, or a built-in name.
        make_pipeline: (size, seed, renderer) -> Pipeline (default:
            :func:`default_pipeline_maker`).
        text, emotion, intensity, seed, size, renderer: the starting values.
        out_dir: where MP4s are written (``render-<n>.mp4``).
    """

    def __init__(
        self,
        companion: CompanionPicker | CompanionSpec | str = "default",
        *,
        make_pipeline: PipelineMaker | None = None,
        text: str = "Hello! I am your companion.",
        emotion: str = "neutral",
        intensity: float = 1.0,
        seed: int = 0,
        size: int = 256,
        renderer: str = "meshwarp",
        out_dir: str | Path = "out",
    ) -> None:
        from avatar.motion.emotion import EXPRESSION_TARGETS

        w = _ipywidgets()
        self.companion = companion
        self.make_pipeline = make_pipeline or default_pipeline_maker()
        self.out_dir = Path(out_dir)
        self.result: RenderResult | None = None
        self._listeners: list[Callable[[RenderResult], None]] = []
        self._count = 0
        sizes = sorted({*SIZES, size})
        self.text = w.Textarea(value=text, description="text", layout=w.Layout(width="100%"))
        self.emotion = w.Dropdown(options=sorted(EXPRESSION_TARGETS), value=emotion)
        self.emotion.description = "emotion"
        self.intensity = w.FloatSlider(value=intensity, min=0.0, max=1.0, step=0.05)
        self.intensity.description = "intensity"
        self.seed = w.IntText(value=seed, description="seed")
        self.size = w.Dropdown(options=sizes, value=size, description="size")
        renderers = sorted({*built_in_renderers(), renderer})
        self.renderer = w.Dropdown(options=renderers, value=renderer, description="renderer")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="frames")
        self.button = w.Button(description="Render", button_style="primary", icon="play")
        self.status = w.HTML()
        self.video = w.HTML()
        self.button.on_click(lambda _: self.render())
        controls = w.HBox([self.emotion, self.intensity, self.renderer])
        options = w.HBox([self.seed, self.size, self.button, self.progress])
        self.widget = w.VBox([self.text, controls, options, self.status, self.video])

    def on_render(self, listener: Callable[[RenderResult], None]) -> None:
        """Call ``listener(result)`` after each render (to update a scrubber or a plot)."""
        self._listeners.append(listener)

    def _spec(self) -> CompanionSpec:
        c = self.companion
        if isinstance(c, CompanionPicker):
            return c.spec
        return load_companion(c) if isinstance(c, str) else c

    def _progressed(self, done: int, total: int | None) -> None:
        """The bar's value (frames encoded) and its end (frames in all, once known)."""
        self.progress.max = max(total or done, 1)
        self.progress.value = done

    def render(self) -> RenderResult | None:
        """Render with the current values; shows the MP4 (or the error) in the panel."""
        self.button.disabled = True
        self.status.value = "rendering..."
        try:
            size, seed = int(self.size.value), int(self.seed.value)
            pipeline = self.make_pipeline(size, seed, str(self.renderer.value))
            self._count += 1
            self.out_dir.mkdir(parents=True, exist_ok=True)
            out = self.out_dir / f"render-{self._count}.mp4"
            mood = {"emotion": self.emotion.value, "emotion_intensity": float(self.intensity.value)}
            self.progress.value = 0
            result = pipeline.render_text(
                self._spec(), self.text.value, out, progress=self._progressed, **mood
            )
        except Exception as exc:  # shown in the panel; the notebook keeps running
            self.status.value = f"<span style='color:#b00'>{type(exc).__name__}: {exc}</span>"
            return None
        finally:
            self.button.disabled = False
        self.result = result
        total = result.timings.get("total", float("nan"))
        self.status.value = (
            f"{out}: {result.n_frames} frames, {result.audio_seconds:.2f} s of audio, "
        )
        self.status.value += f"{total:.2f} s to render (RTF {result.real_time_factor:.3f})"
        self.video.value = video_html(out, width=min(int(self.size.value), 384))
        for listener in self._listeners:
            listener(result)
        return result


def _overlay(image: np.ndarray, points: np.ndarray, color=(0, 255, 0)) -> np.ndarray:
    """``image`` with a 2x2 dot at each (x, y) point that falls inside it."""
    out = image.copy()
    h, w = out.shape[:2]
    xy = np.round(points[:, :2]).astype(int)
    for dx in (0, 1):
        for dy in (0, 1):
            x, y = xy[:, 0] + dx, xy[:, 1] + dy
            keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            out[y[keep], x[keep]] = color
    return out


class FrameScrubber(_Shown):
    """A slider over a render's frames: the frame, an optional landmarks overlay, the channels.

    The landmarks are the identity's (the portrait at rest, scaled to the frame), a reference
    for where the face moved from.

    Args:
        result: a render with a ``path`` (the MP4) and a ``motion`` track.
        frames: (T, H, W, 3) frames instead of reading ``result.path``.
        channels: channels listed at each frame (those the track has).
    """

    def __init__(
        self,
        result: RenderResult,
        *,
        frames: np.ndarray | None = None,
        channels: Sequence[str] = SHOWN_CHANNELS,
    ) -> None:
        w = _ipywidgets()
        if frames is None:
            from avatar.media import read_mp4

            if result.path is None:
                raise ValueError("FrameScrubber: the render has no MP4 path; pass frames=")
            frames = read_mp4(result.path).frames
        self.frames = np.asarray(frames)
        if len(self.frames) == 0:
            raise ValueError("FrameScrubber: no frames")
        self.motion = result.motion
        self.fps = float(result.fps)
        self.landmarks = self._landmarks(result)
        names = self.motion.channels if self.motion is not None else ()
        self.channels = [c for c in channels if c in names]
        self.slider = w.IntSlider(value=0, min=0, max=len(self.frames) - 1, description="frame")
        self.play = w.Play(min=0, max=len(self.frames) - 1, interval=round(1000 / self.fps))
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.show_landmarks = w.Checkbox(
            value=False, description="landmarks", disabled=self.landmarks is None
        )
        self.image = w.Image(format="png")
        self.label = w.HTML()
        self.values = w.HTML()
        self.slider.observe(lambda _: self.show(), names="value")
        self.show_landmarks.observe(lambda _: self.show(), names="value")
        top = w.HBox([self.play, self.slider, self.show_landmarks])
        self.widget = w.VBox([top, w.HBox([self.image, w.VBox([self.label, self.values])])])
        self.show()

    def _landmarks(self, result: RenderResult) -> np.ndarray | None:
        identity = result.identity
        if identity is None or getattr(identity, "landmarks", None) is None:
            return None
        points = np.asarray(identity.landmarks, np.float32)[:, :2]
        ph, pw = np.asarray(identity.portrait).shape[:2]
        fh, fw = self.frames.shape[1:3]
        return points * np.array([fw / pw, fh / ph], np.float32)

    @property
    def index(self) -> int:
        return int(self.slider.value)

    def frame_image(self) -> np.ndarray:
        """The shown frame, with the landmarks when ticked."""
        frame = self.frames[self.index]
        if self.show_landmarks.value and self.landmarks is not None:
            frame = _overlay(frame, self.landmarks)
        return frame

    def channel_values(self) -> dict[str, float]:
        """The listed channels' values at the shown frame (the track's last row past its end)."""
        if self.motion is None or not self.channels:
            return {}
        row = min(self.index, len(self.motion) - 1)
        return {c: float(self.motion[c][row]) for c in self.channels}

    def show(self) -> None:
        """Redraw for the slider's frame (called on every change)."""
        i = self.index
        self.image.value = png_bytes(self.frame_image())
        self.label.value = f"<b>frame {i}</b> / {len(self.frames) - 1} · {i / self.fps:.2f} s"
        rows = "".join(
            f"<tr><td>{k}</td><td style='text-align:right'>{v:+.3f}</td></tr>"
            for k, v in self.channel_values().items()
        )
        self.values.value = f"<table style='font-family:monospace'>{rows}</table>"
