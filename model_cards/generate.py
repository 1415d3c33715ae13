"""Render a model card (README.md) for a finished training run from its run_info.json.

```bash
python model_cards/generate.py runs/roboreward-qwen3-vl-4b-full
python model_cards/generate.py runs/my-run --template my_card_template.md
```
"""

import argparse

from roboreward.model_card import card_from_run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="output_dir of a roboreward training run (holds run_info.json)")
    parser.add_argument("--template", default=None, help="card template (default: roboreward/templates/model_card.md)")
    args = parser.parse_args()
    print(card_from_run(args.run_dir, args.template))
