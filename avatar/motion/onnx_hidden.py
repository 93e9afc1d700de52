"""The streaming step of :class:`~avatar.modules.audio2motion.Audio2Motion` on ONNX Runtime.

A real-time call runs the network's causal part (:meth:`Audio2Motion.hidden`: input norm,
residual causal convolutions, GRU) on 40 ms of audio at a time: about 120 small operators, so
eager PyTorch spends its time dispatching them (2.4-2.6 ms a call on this 2-core CPU, against
0.4 ms for the same graph in ONNX Runtime). :class:`OnnxHidden` exports that part once, in
memory, from the loaded network (nothing is written or downloaded), and runs it with one
thread; outputs equal eager PyTorch's to float rounding (tests: < 1e-5).

The log-mel features before it and the pooling and heads after it stay in PyTorch.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import torch
from torch import nn

from avatar.modules.audio2motion import Audio2Motion, NetState

log = logging.getLogger(__name__)


class _Step(nn.Module):
    """``(feats, gru, *conv caches) -> (h, gru, *conv caches)``: ``hidden`` with flat state."""

    def __init__(self, net: Audio2Motion) -> None:
        super().__init__()
        self.net = net

    def forward(self, feats: torch.Tensor, gru: torch.Tensor, *conv: torch.Tensor):
        h, state = self.net.hidden(feats, NetState(list(conv), gru))
        return (h, state.gru, *state.conv)


class OnnxHidden:
    """``net.hidden(feats, state)`` on ONNX Runtime, same signature and results.

    Args:
        net: the trained network, in eval mode (it is left in eval mode).

    Raises:
        ImportError: onnxruntime is not installed (callers fall back to PyTorch).
    """

    def __init__(self, net: Audio2Motion) -> None:
        import onnxruntime as ort

        self._n_conv = len(net.blocks)
        step = _Step(net).eval()
        state = net.initial_state(1)
        feats = torch.zeros(1, net.in_norm.num_features, net.hops_per_frame)
        self._conv_names = [f"conv{i}" for i in range(self._n_conv)]
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notes on the GRU and the cache slices
            torch.onnx.export(
                step,
                (feats, state.gru, *state.conv),
                buffer,
                input_names=["feats", "gru", *self._conv_names],
                output_names=["h", "gru_out", *[f"{n}_out" for n in self._conv_names]],
                dynamic_axes={"feats": {2: "hops"}, "h": {1: "hops"}},
                opset_version=17,
                dynamo=False,
            )
        net.eval()  # the exporter restores the wrapper's (training) mode on every submodule
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            buffer.getvalue(), options, providers=["CPUExecutionProvider"]
        )
        log.debug("audio2motion streaming step on ONNX Runtime (%d bytes)", len(buffer.getvalue()))

    def __call__(self, feats: torch.Tensor, state: NetState) -> tuple[torch.Tensor, NetState]:
        """``feats`` (1, n_mels, n) log-mel -> hop states (1, n, H) and the next state."""
        inputs = {"feats": feats.numpy(), "gru": state.gru.numpy()}
        inputs.update(
            {name: c.numpy() for name, c in zip(self._conv_names, state.conv, strict=True)}
        )
        h, gru, *conv = self._session.run(None, inputs)  # thread-safe: sessions share it
        state = NetState([torch.from_numpy(c) for c in conv], torch.from_numpy(gru))
        return torch.from_numpy(np.ascontiguousarray(h)), state
