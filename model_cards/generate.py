"""Render a model card (README.md) for a finished training run from its run_info.json.

```bash
python model_cards/generate.py runs/roboreward-qwen3-vl-4b-full
python model_cards/generate.py runs/my-run --eval-results runs/eval-test   # + `roboreward eval` results
python model_cards/generate.py runs/my-run --template my_card_template.md
```

The card is a huggingface_hub ``ModelCard`` (see :mod:`roboreward.training.card`); ``roboreward push`` renders
the same card for the repo it uploads to.
"""

import argparse

from roboreward.training import card_from_run, eval_results_from_leaderboard

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("run_dir", help="output_dir of a roboreward training run (holds run_info.json)")
    parser.add_argument("--template", default=None, help="Jinja card template (default: the package's)")
    parser.add_argument("--eval-results", default=None, help="`roboreward eval` output folder or leaderboard.json")
    parser.add_argument("--eval-model", default=None, help="leaderboard row of this model (name or spec)")
    args = parser.parse_args()
    results = eval_results_from_leaderboard(args.eval_results, args.eval_model) if args.eval_results else []
    print(card_from_run(args.run_dir, args.template, results))
