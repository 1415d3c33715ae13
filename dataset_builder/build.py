"""Build a RoboReward dataset: a thin entry point for ``roboreward build`` (see docs/dataset.md).

python dataset_builder/build.py --source sample --out ./roboreward_sample
python dataset_builder/build.py --source lerobot:/data/droid --source roboarena:/data/roboarena --out ./rr
"""

from __future__ import annotations

import typer

from roboreward.build import build_command

if __name__ == "__main__":
    typer.run(build_command)
