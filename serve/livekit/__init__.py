"""The companion in a LiveKit room: livekit-agents' avatar contract over the core's streaming
session.

- :mod:`serve.livekit.generator`: ``CompanionVideoGenerator`` (a ``VideoGenerator``);
- :mod:`serve.livekit.runner`: ``CompanionAvatarRunner`` (``AvatarRunner`` that cuts queued
  media at an interruption and reports what was heard);
- :mod:`serve.livekit.companion`: a companion's generator from the ``realtime`` settings;
- :mod:`serve.livekit.plugin`: ``CompanionAvatar``, the voice agent's side (an ``AvatarSession``);
- :mod:`serve.livekit.local_room`, :mod:`serve.livekit.simulation`,
  :mod:`serve.livekit.published_mp4`: a call without a server (``python -m serve.simulate``).

The worker is ``python -m serve.worker`` (:mod:`serve.worker`).
"""
