"""``python -m serve [overrides]`` (``make serve``): the API on uvicorn.

Overrides are Hydra overrides of ``configs/serve.yaml`` (``port=8123``, ``var_dir=/srv/avatar``).
Bad configuration prints one ``error:`` line on stderr and exits 2.
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from avatar.entry_errors import report
from avatar.quiet import quiet_native_logs

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; returns the exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with quiet_native_logs():
        try:
            from serve.app import create_app
            from serve.config import load

            settings, make_pipeline = load(sys.argv[1:] if argv is None else argv)
            app = create_app(settings, make_pipeline)
        except Exception as exc:  # anticipated ones exit 2, bugs 1 with their traceback
            return report(exc)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
