"""Hugging Face Space entry point: upload a robot video, type the instruction, get the 1-5 reward.

All the logic lives in :mod:`roboreward.demo`; this file only reads the settings from the environment:

* ``ROBOREWARD_MODEL`` — Hub repo id, local folder, ``metaworld``, ``tiny`` or ``openai:<model>@<url>``
  (default ``teetone/RoboReward-4B``; ``metaworld``, the bundled Meta-World reward model, when
  ``HF_HUB_OFFLINE=1``);
* ``ROBOREWARD_DEMO_EXAMPLES`` — a dataset folder in the released layout to offer examples from;
* ``ROBOREWARD_MAX_FILE_MB`` / ``ROBOREWARD_MAX_DURATION_S`` / ``ROBOREWARD_MAX_PIXELS`` /
  ``ROBOREWARD_CONCURRENCY`` — limits; ``ROBOREWARD_KEEP_UPLOADS_S`` — seconds an upload is kept (default 900).

Run locally from a checkout: ``HF_HUB_OFFLINE=1 python spaces/demo/app.py`` (or ``roboreward demo``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

try:
    import roboreward  # noqa: F401  (installed, or copied beside this file on the Space)
except ImportError:  # running from a checkout of the repository
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from roboreward.demo import serve_from_env as main  # noqa: E402

if __name__ == "__main__":
    main()
