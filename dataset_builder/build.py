"""Build a RoboReward dataset: a thin entry point for ``roboreward build`` (see docs/dataset.md).

python dataset_builder/build.py --source sample --out ./roboreward_sample
python dataset_builder/build.py --source lerobot:/data/droid --source roboarena:/data/roboarena --out ./rr
"""

from __future__ import annotations

import sys

from roboreward.cli import app

if __name__ == "__main__":
    app(["build", *sys.argv[1:]])
