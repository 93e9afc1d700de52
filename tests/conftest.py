"""Shared fixtures: a session-wide identity cache, small derived identities, a quiet W&B."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def identity_cache(tmp_path_factory: pytest.TempPathFactory):
    """A fresh identity cache directory for the whole test session."""
    return tmp_path_factory.mktemp("identity-cache")


@pytest.fixture(scope="session")
def identity_settings(identity_cache):
    """``configs/render.yaml``'s identity settings, with the session's cache directory and no
    super-resolution (tests/avatar/identity/test_upscale.py covers it; ~5-20 s a portrait)."""
    from omegaconf import OmegaConf

    from avatar.config import compose
    from avatar.identity.derive import IdentitySettings

    node = OmegaConf.to_container(compose("render").identity, resolve=True)
    return IdentitySettings(**{**node, "cache_dir": str(identity_cache), "super_resolution": "off"})


@pytest.fixture(scope="session")
def default_identity_256(identity_settings):
    """The default companion's identity at 256 px (derived once per session)."""
    from avatar.companion import load_companion
    from avatar.identity.derive import derive_identity

    return derive_identity(load_companion("default"), size=256, settings=identity_settings)


@pytest.fixture(scope="session")
def render_config_overrides(identity_cache) -> list[str]:
    """Overrides that keep end-to-end renders small and the cache inside the session; renders
    stay on threads (no worker process per test pipeline: tests/avatar/test_render_workers.py
    covers the processes, down to byte-identical MP4s); no super-resolution of small faces."""
    return [
        "renderer.size=256",
        f"identity.cache_dir={identity_cache}",
        "render_processes=0",
        "identity.super_resolution=off",
    ]
