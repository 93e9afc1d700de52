"""Request and response bodies of the API (pydantic), with examples for ``/docs``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CompanionOut",
    "GenerateIn",
    "Health",
    "RendererIn",
    "SessionIn",
    "SessionOut",
    "TokenIn",
    "TokenOut",
]


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class CompanionOut(BaseModel):
    """A companion: its images and the one the avatar is made from."""

    id: str = Field(examples=["cmp_3f9c2d0a8b7e41f6a1c2d3e4f5a6b7c8"])
    name: str = Field(examples=["Astra"])
    images: int = Field(description="how many images were uploaded", examples=[2])
    source_image: int = Field(description="index of the image the avatar uses", examples=[0])
    voice: str | None = Field(default=None, examples=["flite-slt"])
    created_at: datetime | None = None


class RendererIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(description="frame side in pixels (one of the served sizes)", examples=[512])


class SessionIn(BaseModel):
    """The rendering context of one companion."""

    model_config = ConfigDict(extra="forbid")
    companion_id: str = Field(examples=["default"])
    voice: str | None = Field(
        default=None, description="a voice name (default: the companion's)", examples=["heart"]
    )
    emotion: str | None = Field(
        default=None,
        description="the session's mood (neutral, happy, sad, ...)",
        examples=["happy"],
    )
    renderer: RendererIn | None = None


class SessionOut(BaseModel):
    id: str = Field(examples=["ses_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"])
    companion_id: str = Field(examples=["default"])
    voice: str | None = None
    emotion: str | None = None
    size: int = Field(examples=[512])
    created_at: datetime
    expires_at: datetime


class GenerateIn(BaseModel):
    """What the companion says."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(
        description="the companion's response; inline tags such as [smile] change the emotion",
        examples=["Hi! [smile] It is lovely to see you."],
    )
    emotion: str | None = Field(default=None, examples=["happy"])
    emotion_intensity: float = Field(default=1.0, ge=0.0, le=1.0, examples=[0.7])


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identity: str | None = Field(default=None, max_length=128, examples=["user-42"])
    name: str | None = Field(default=None, max_length=128, examples=["Sam"])


class TokenOut(BaseModel):
    url: str = Field(examples=["wss://livekit.example.com"])
    room: str = Field(examples=["avatar-ses_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"])
    token: str
    expires_at: datetime
