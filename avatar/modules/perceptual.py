"""ST-LPIPS (shift-tolerant LPIPS, Ghildyal & Liu 2022), one loader for the training losses and
the eval metrics: the ``stlpips-pytorch`` wheel ships its networks, so nothing downloads."""

from __future__ import annotations

from torch import nn

__all__ = ["load_stlpips"]


def load_stlpips(net: str = "alex", *, frozen: bool = False) -> nn.Module:
    """ST-LPIPS over ``net`` (``alex``, ``vgg``, ``squeeze``) in eval mode; it takes two
    (B, 3, H, W) batches in [-1, 1] (or in [0, 1] with ``normalize=True``) and gives (B, 1, 1, 1)
    distances >= 0. ``frozen``: no gradients for its parameters (a loss network)."""
    from stlpips_pytorch import stlpips  # type: ignore[import-untyped]

    model = stlpips.LPIPS(net=net, variant="shift_tolerant", verbose=False).eval()
    if frozen:
        for p in model.parameters():
            p.requires_grad_(False)
    return model
