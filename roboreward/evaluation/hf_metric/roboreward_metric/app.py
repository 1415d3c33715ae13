"""The Space of the RoboReward metric: a Gradio widget over this folder's ``evaluate`` module."""

from pathlib import Path

from roboreward.evaluation.hf_metric.widget import serve

if __name__ == "__main__":
    serve(Path(__file__).resolve().parent)
