"""The hibari voice's shared, lazily loaded parts: assets, vocabulary, the ONNX session with
the durations exposed as an output, and the G2P (each cached per process, loaded once).

Used by :class:`avatar.speech.hibari_tts.HibariTTS`, which loads them on its first call under
:data:`LOAD_LOCK`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from avatar.cache_root import cache_root
from avatar.errors import AvatarError

if TYPE_CHECKING:
    import onnxruntime as ort
    from hibari.g2p import G2P

__all__ = ["LOAD_LOCK", "Model", "g2p", "hibari_assets", "oov_letters", "session", "vocab"]

log = logging.getLogger(__name__)

LOAD_LOCK = threading.Lock()
"""Held while the first synthesize of any HibariTTS loads the shared model."""


@functools.lru_cache(maxsize=1)
def hibari_assets() -> str:
    import hibari.tts

    return hibari.tts.ASSETS


@functools.lru_cache(maxsize=1)
def vocab() -> dict[str, int]:
    with open(os.path.join(hibari_assets(), "vocab.json"), encoding="utf-8") as f:
        return json.load(f)


@functools.lru_cache(maxsize=2)
def oov_letters(british: bool) -> frozenset[str]:
    """The characters hibari's letter-to-sound net reads (it drops the rest of a word)."""
    with open(os.path.join(hibari_assets(), f"oov{'_gb' * british}.json"), encoding="utf-8") as f:
        return frozenset(json.load(f)["in"])


@functools.lru_cache(maxsize=2)
def _patched_model(path: str) -> bytes:
    """The voice's ONNX model with the CumSum input (durations, int64 ``(L,)``) as output 7."""
    import onnx

    model = onnx.load(path)
    cumsums = [n for n in model.graph.node if n.op_type == "CumSum"]
    if len(cumsums) != 1:
        raise AvatarError(f"hibari model {path}: expected one CumSum node, found {len(cumsums)}")
    name = cumsums[0].input[0]
    # The graph already carries this tensor's ValueInfo (int64, 1-D); no shape inference needed.
    output = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, None)
    model.graph.output.append(output)
    return model.SerializeToString()


PATCH_VERSION = 1
"""Bump when :func:`_patched_model` changes, so patched files cached before are not used."""


def _patched_model_file(path: str) -> str | None:
    """A file holding :func:`_patched_model` of ``path``, made once per model file in the cache
    root (loading it skips importing ``onnx`` and re-serialising 8 MB: ~0.1 s of every process
    start); None when the cache cannot be written (the caller uses the bytes)."""
    st = os.stat(path)
    name = f"hibari-{st.st_size}-{st.st_mtime_ns}-patch{PATCH_VERSION}.onnx"
    cached = cache_root() / "models" / name
    if cached.is_file():
        return str(cached)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".hibari-", suffix=".onnx", dir=cached.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_patched_model(path))
            os.replace(tmp, cached)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        log.warning("cannot cache the patched voice model in %s (%s)", cached.parent, exc)
        return None
    return str(cached)


@functools.lru_cache(maxsize=4)
def session(path: str, threads: int) -> ort.InferenceSession:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = threads
    so.log_severity_level = 3
    model = _patched_model_file(path) or _patched_model(path)
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=2)
def g2p(british: bool) -> tuple[G2P, threading.Lock]:
    """The shared G2P of an accent and the lock its calls run under."""
    from hibari.g2p import G2P

    return G2P(british=british), threading.Lock()


@dataclass(frozen=True)
class Model:
    """What :class:`HibariTTS` loads on its first call (shared by every instance of a voice)."""

    session: ort.InferenceSession
    outputs: list[str]  # the session's outputs: the six spectra, then the durations
    g2p: G2P
    g2p_lock: threading.Lock
