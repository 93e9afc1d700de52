"""Validation of the reference-based metrics on inputs whose answer is known.

- viseme agreement: 1 for the truth itself, falling monotonically as the timeline shifts k frames;
- PSNR of a known MSE is 10 log10(1 / MSE); SSIM of identical videos is 1;
- ST-LPIPS is 0 for identical frames and grows with blur strength;
- LPIPS loads its trunk from the weights directory, and is skipped with a reason without it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar.errors import WeightsMissingError
from avatar.motion.track import MotionTrack
from avatar.motion.visemes import VISEMES
from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline
from evals.functional.perceptual import load_lpips
from evals.functional.reconstruction import MAX_PSNR_DB
from evals.functional.viseme_agreement import reference_visemes, track_visemes
from evals.metrics import LPIPS, PSNR, SSIM, STLPIPS, VisemeAgreement
from evals.suite import Suite
from evals.weights import WeightsRegistry

FPS = 25.0


def _timeline(shift_s: float = 0.0, seed: int = 0) -> PhonemeTimeline:
    """Seeded speech: phones of 60-160 ms over 14 visemes, with short pauses."""
    rng = np.random.default_rng(seed)
    symbols = "p f θ t k ʃ s ɹ ɑ ɛ i u".split()
    phones, t = [Phone(SILENCE, 0.0, 0.3 + shift_s)], 0.3 + shift_s
    for i in range(40):
        d = float(rng.uniform(0.06, 0.16))
        sym = SILENCE if i % 13 == 12 else symbols[int(rng.integers(len(symbols)))]
        phones.append(Phone(sym, t, t + d))
        t += d
    phones.append(Phone(SILENCE, t, t + 0.4))
    return PhonemeTimeline(phones, duration=t + 0.4)


def _track(timeline: PhonemeTimeline, n: int) -> MotionTrack:
    track = MotionTrack.zeros(n, FPS, tuple(f"viseme.{v}" for v in VISEMES))
    for i, v in enumerate(VISEMES):
        track.set(f"viseme.{v}", reference_visemes(timeline, n, FPS)[:, i])
    return track


def test_viseme_agreement_falls_with_the_timeline_shift() -> None:
    n = int(_timeline().duration * FPS)
    truth = torch.from_numpy(reference_visemes(_timeline(), n, FPS))[None]
    scores = []
    for k in range(4):
        rendered = track_visemes(_track(_timeline(shift_s=k / FPS), n))
        out = VisemeAgreement()(torch.from_numpy(rendered)[None], truth)
        scores.append((out["agreement"].item(), out["speech"].item()))
    assert scores[0] == (1.0, 1.0)
    for key in (0, 1):
        vals = [s[key] for s in scores]
        assert all(a > b for a, b in zip(vals, vals[1:], strict=False)), scores
    assert scores[3][1] < 0.6, scores


def test_track_without_visemes_is_rejected() -> None:
    with pytest.raises(ValueError, match="viseme"):
        track_visemes(MotionTrack.zeros(5, FPS))


@pytest.mark.parametrize("mse", [1e-4, 1e-3, 0.01])
def test_psnr_of_a_known_mse(mse: float) -> None:
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 3, 3, 16, 16, generator=g, dtype=torch.float64) * 0.5 + 0.25
    sign = torch.randint(0, 2, ref.shape, generator=g).double() * 2 - 1  # +-sqrt(mse): exact MSE
    out = PSNR()(ref + sign * mse**0.5, ref).item()
    assert out == pytest.approx(10 * np.log10(1.0 / mse), abs=1e-5)  # torchmetrics: float32
    assert PSNR()(ref, ref).item() == MAX_PSNR_DB


def test_ssim_is_one_for_identical_and_falls_with_noise() -> None:
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(1, 4, 3, 24, 24, generator=g, dtype=torch.float64)
    assert SSIM()(ref, ref).item() == pytest.approx(1.0, abs=1e-9)
    noisy = [
        SSIM()((ref + s * torch.randn(ref.shape, generator=g)).clamp(0, 1), ref).item()
        for s in (0.02, 0.1, 0.3)
    ]
    assert 1.0 > noisy[0] > noisy[1] > noisy[2]
    with pytest.raises(ValueError, match="11x11"):
        SSIM()(ref[..., :8, :8], ref[..., :8, :8])


def _blurred(x: torch.Tensor, sigma: float) -> torch.Tensor:
    from torchvision.transforms.functional import gaussian_blur

    k = 2 * int(3 * sigma) + 1
    return gaussian_blur(x.flatten(0, 1), [k, k], [sigma, sigma]).reshape(x.shape)


def _frames(seed: int = 0, size: int = 64) -> torch.Tensor:
    """(1, 2, 3, size, size): a checkerboard with coloured noise, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    board = (((yy // 8) + (xx // 8)) % 2).float()
    return (0.6 * board + 0.4 * torch.rand(1, 2, 3, size, size, generator=g)).clamp(0, 1)


def test_stlpips_is_zero_for_identical_and_grows_with_blur() -> None:
    x = _frames()
    assert STLPIPS(net="alex")(x, x).item() == pytest.approx(0.0, abs=1e-7)
    dists = [STLPIPS(net="alex")(_blurred(x, s), x).item() for s in (0.5, 1.0, 2.0, 3.0)]
    assert all(a < b for a, b in zip(dists, dists[1:], strict=False)), dists
    assert dists[0] > 0


def _trunk_registry(tmp_path: Path, write: bool) -> WeightsRegistry:
    """A registry whose ``lpips_alex`` is a random torchvision AlexNet saved in ``tmp_path``."""
    from torchvision.models import alexnet

    path = tmp_path / "alexnet-owt-7be5be79.pth"
    digest = None
    if write:
        torch.manual_seed(0)
        torch.save(alexnet(weights=None).state_dict(), path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    entry = {
        "file": path.name,
        "sha256": digest or "7be5be79",
        "licence": "BSD-3-Clause",
        "used_by": "test",
        "source": "torch_hub",
    }
    return WeightsRegistry(
        directory=tmp_path, entries={"lpips_alex": entry}, strict=False, hub_dir=tmp_path / "hub"
    )


def test_lpips_skips_without_its_trunk(tmp_path: Path) -> None:
    metric = LPIPS(registry=_trunk_registry(tmp_path, write=False), net="alex")
    with pytest.raises(WeightsMissingError, match="weights lpips_alex absent"):
        metric.update(_frames(), _frames())
    suite = Suite(
        {"recon": {"lpips": LPIPS(registry=_trunk_registry(tmp_path, write=False), net="alex")}}
    )
    _, skipped = suite.score_clip({"video": _frames(), "target_video": _frames(1)})
    assert skipped["recon/lpips"].startswith("skipped: weights lpips_alex absent")


def test_lpips_loads_a_trunk_from_the_weights_directory(tmp_path: Path) -> None:
    from torchvision.models import alexnet

    model = load_lpips("alex", registry=_trunk_registry(tmp_path, write=True))
    torch.manual_seed(0)
    features = alexnet(weights=None).features.state_dict()
    trunk = model.net.state_dict()
    assert torch.equal(trunk["slice1.0.weight"], features["0.weight"])
    assert torch.equal(trunk["slice5.10.bias"], features["10.bias"])
    x = _frames()
    assert LPIPS(model=model, net="alex")(x, x).item() == pytest.approx(0.0, abs=1e-7)
    assert LPIPS(model=model, net="alex")(_blurred(x, 2.0), x).item() > 0


def test_viseme_inputs_of_a_render_result() -> None:
    from types import SimpleNamespace

    from evals.functional.viseme_agreement import viseme_inputs

    tl = _timeline()
    n = int(tl.duration * FPS)
    result = SimpleNamespace(motion=_track(tl, n), speech=SimpleNamespace(timeline=tl))
    inputs = viseme_inputs(result)
    assert inputs["visemes"].shape == inputs["target_visemes"].shape == (1, n, len(VISEMES))
    assert VisemeAgreement()(**inputs)["agreement"].item() == 1.0
    assert viseme_inputs(SimpleNamespace(motion=None)) == {}
