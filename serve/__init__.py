"""Serving: FastAPI app and LiveKit avatar worker over the avatar core."""
