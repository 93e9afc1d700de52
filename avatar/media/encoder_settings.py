"""EncoderSettings: the H.264 (libx264) and AAC settings of written MP4s, checked when made.

Every value comes from the config group ``encoder`` (``configs/render.yaml``, where the
defaults live and ``benchmarks/bench_encoder.py`` says why); a bad one raises
:class:`~avatar.errors.ConfigValueError` naming its key. libx264 itself ignores what it cannot
parse in ``x264-params`` (FFmpeg only logs it), so ``x264_params`` is checked here against the
options worth tuning for this encoder's speed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from avatar.errors import ConfigValueError

__all__ = ["X264_PARAMS", "X264_PRESETS", "X264_TUNES", "EncoderSettings"]

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
_PSY_TUNES = ("film", "animation", "grain", "stillimage", "psnr", "ssim")
X264_TUNES = (*_PSY_TUNES, "fastdecode", "zerolatency")
"""libx264 tunes; ``tune`` combines them with commas (at most one of the first six)."""


def _int_in(lo: int, hi: int) -> Callable[[str], bool]:
    return lambda v: v.isdigit() and lo <= int(v) <= hi


def _one_of(*names: str) -> Callable[[str], bool]:
    return lambda v: v in names


def _partitions(v: str) -> bool:
    names = {"none", "all", "p8x8", "p4x4", "b8x8", "i8x8", "i4x4"}
    return all(p in names for p in v.split(","))


X264_PARAMS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "me": ("dia, hex, umh, esa or tesa", _one_of("dia", "hex", "umh", "esa", "tesa")),
    "subme": ("an integer in 0..11", _int_in(0, 11)),
    "ref": ("an integer in 1..16", _int_in(1, 16)),
    "trellis": ("an integer in 0..2", _int_in(0, 2)),
    "bframes": ("an integer in 0..16", _int_in(0, 16)),
    "b-adapt": ("an integer in 0..2", _int_in(0, 2)),
    "rc-lookahead": ("an integer in 0..250", _int_in(0, 250)),
    "mbtree": ("0 or 1", _int_in(0, 1)),
    "weightp": ("an integer in 0..2", _int_in(0, 2)),
    "aq-mode": ("an integer in 0..3", _int_in(0, 3)),
    "8x8dct": ("0 or 1", _int_in(0, 1)),
    "cabac": ("0 or 1", _int_in(0, 1)),
    "partitions": ("comma-separated none, all, p8x8, p4x4, b8x8, i8x8, i4x4", _partitions),
}
"""x264 options ``x264_params`` may set: name -> (what a value must be, its check)."""

_PARAM = re.compile(r"([a-z0-9-]+)=([^:=\s]+)")


def _check_x264_params(params: object) -> None:
    if not isinstance(params, str):
        raise ConfigValueError(f"encoder.x264_params must be a string, got {params!r}")
    seen: set[str] = set()
    for item in params.split(":") if params else ():
        match = _PARAM.fullmatch(item)
        if match is None:
            raise ConfigValueError(
                f"encoder.x264_params must be key=value pairs joined by ':', got {params!r}"
            )
        key, value = match.groups()
        if key not in X264_PARAMS:
            raise ConfigValueError(
                f"encoder.x264_params: unknown or unsupported x264 option {key!r} "
                f"(supported: {', '.join(X264_PARAMS)})"
            )
        what, ok = X264_PARAMS[key]
        if key in seen or not ok(value):
            raise ConfigValueError(
                f"encoder.x264_params: {key} must be {what}, once, got {value!r} in {params!r}"
            )
        seen.add(key)


def _check_tune(tune: object) -> None:
    if tune is None:
        return
    names = tune.split(",") if isinstance(tune, str) else []
    if (
        not names
        or not set(names) <= set(X264_TUNES)
        or len(set(names)) != len(names)
        or len(set(names) & set(_PSY_TUNES)) > 1
    ):
        raise ConfigValueError(
            f"encoder.tune must be null or a comma-separated combination of "
            f"{', '.join(X264_TUNES)} (at most one of {', '.join(_PSY_TUNES)}), got {tune!r}"
        )


@dataclass(frozen=True)
class EncoderSettings:
    """H.264/AAC settings of written MP4s (config group ``encoder``; defaults live there).

    Attributes:
        crf: libx264 constant rate factor, 0..51 (18 near-transparent, 23 the x264 default).
        preset: libx264 preset, ``ultrafast`` .. ``veryslow``.
        threads: libx264 threads, 0..16; 0 lets libx264 choose (sliced threads in PyAV).
        tune: libx264 tune (:data:`X264_TUNES`, comma-combined), or None for none.
        x264_params: x264 options over the preset's, ``key=value`` joined by ``:`` (keys in
            :data:`X264_PARAMS`), or ``""`` for none.
        audio_bitrate: AAC bit rate in bit/s, 8000..512000.

    >>> EncoderSettings(crf=99, preset="veryfast", threads=1, tune=None, x264_params="",
    ...                 audio_bitrate=128000)
    Traceback (most recent call last):
    ...
    avatar.errors.ConfigValueError: encoder.crf must be an integer in 0..51, got 99
    """

    crf: int
    preset: str
    threads: int
    tune: str | None
    x264_params: str
    audio_bitrate: int

    def __post_init__(self) -> None:
        if isinstance(self.crf, bool) or not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise ConfigValueError(f"encoder.crf must be an integer in 0..51, got {self.crf!r}")
        if self.preset not in X264_PRESETS:
            raise ConfigValueError(
                f"encoder.preset must be one of {', '.join(X264_PRESETS)}, got {self.preset!r}"
            )
        threads = self.threads
        if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= 16:
            raise ConfigValueError(
                f"encoder.threads must be an integer in 0..16 (0: libx264 chooses), got {threads!r}"
            )
        _check_tune(self.tune)
        _check_x264_params(self.x264_params)
        if not isinstance(self.audio_bitrate, int) or not 8000 <= self.audio_bitrate <= 512000:
            raise ConfigValueError(
                f"encoder.audio_bitrate must be 8000..512000 bit/s, got {self.audio_bitrate!r}"
            )

    def x264_options(self, *, tune: str | None = None) -> dict[str, str]:
        """The libx264 options (PyAV ``add_stream`` options) of these settings; ``tune`` is
        added to the settings' own tune (the stream writer's ``zerolatency``)."""
        tunes = [t for t in (self.tune or "").split(",") + (tune or "").split(",") if t]
        options = {"crf": str(self.crf), "preset": self.preset, "threads": str(self.threads)}
        if tunes:
            options["tune"] = ",".join(dict.fromkeys(tunes))
        if self.x264_params:
            options["x264-params"] = self.x264_params
        return options
