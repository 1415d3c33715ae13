"""The local reward model: a transformers Qwen3-VL / Qwen2.5-VL checkpoint (default ``teetone/RoboReward-4B``).

Frames are sampled uniformly (:class:`~roboreward.sampling.FrameSampling`), the released cards' prompt is primed
with ``ANSWER: `` and the distribution over 1..5 is read from the logits of the tokens "1".."5" at the answer
position. No generation, no sampling of tokens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.sampling import FrameSampling
from roboreward.scoring import vlm
from roboreward.scoring.common import DEFAULT_MODEL, is_frames, output_from_probs, resolve_sampling, sample_video
from roboreward.types import RewardOutput, VideoInput
from roboreward.video import SampledVideo


class RewardModel:
    """A Qwen-VL reward model scoring (video, instruction) pairs from the answer-token logits.

    ``model`` is a Hub repo id or local folder (loaded with :func:`roboreward.scoring.vlm.load_model`), or an already
    loaded model together with ``processor`` (e.g. a model being trained; it is put in eval mode). Batches are
    left padded and the logits of the last position are read, so batched and one-by-one scores agree up to float
    tolerance. ``decode_workers`` threads decode the videos of a ``score_batch`` call in parallel.
    """

    def __init__(
        self,
        model: Any = DEFAULT_MODEL,
        *,
        processor: Any = None,
        sampling: FrameSampling | None = None,
        fps: float | None = None,
        max_frames: int | None = None,
        min_frames: int | None = None,
        num_frames: int | None = None,
        batch_size: int = 4,
        decode_workers: int = 4,
        dtype: str = "auto",
        device_map: str | dict | None = None,
        device: str | None = None,
        quantization_config: Any = None,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        template: str | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(model, str | os.PathLike):
            from roboreward.scoring.spec import resolve_builtin

            self.model_id = str(model)
            self.model, self.processor = vlm.load_model(
                resolve_builtin(str(model)) or model,  # "tiny", "metaworld": the package's own models
                dtype=dtype,
                device_map=device_map,
                quantization_config=quantization_config,
                attn_implementation=attn_implementation,
                trust_remote_code=trust_remote_code,
                revision=revision,
            )
            if device is not None and device_map is None and quantization_config is None:
                self.model.to(device)
            elif device is None and device_map is None and quantization_config is None:
                import torch

                if torch.cuda.is_available():
                    self.model.to("cuda")
        else:
            if processor is None:
                raise ValueError("RewardModel(model=<loaded model>) needs processor=")
            self.model, self.processor = model, processor
            self.model_id = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        self.model.eval()
        self.family = vlm.model_family(self.model.config)
        self.score_ids = vlm.score_token_ids(self.processor.tokenizer)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sampling = resolve_sampling(
            sampling, fps=fps, max_frames=max_frames, min_frames=min_frames, num_frames=num_frames
        )
        self.batch_size = batch_size
        self.decode_workers = decode_workers
        self.template = template
        self.name = name or Path(self.model_id).name or self.model_id

    @property
    def settings(self) -> dict[str, Any]:
        """What produced the scores (recorded in every results file)."""
        return {
            "scorer": "RewardModel",
            "model": self.model_id,
            "family": self.family,
            **self.sampling.as_dict(),
            "custom_template": self.template is not None,
        }

    def sample(self, video: VideoInput) -> SampledVideo:
        """The frames this model sees of ``video`` (its :attr:`sampling`)."""
        return sample_video(video, self.sampling)

    def score(self, video: VideoInput, instruction: str) -> RewardOutput:
        return self.score_batch([video], [instruction])[0]

    def score_batch(self, videos: Sequence[VideoInput], instructions: Sequence[str]) -> list[RewardOutput]:
        """Score many pairs, ``batch_size`` per forward pass (order preserved)."""
        if len(videos) != len(instructions):
            raise ValueError(f"{len(videos)} videos but {len(instructions)} instructions")
        if self.decode_workers > 1 and sum(not is_frames(v) for v in videos) > 1:
            # decoders release the GIL: decode encoded videos in parallel (order preserved)
            with ThreadPoolExecutor(min(self.decode_workers, len(videos))) as pool:
                sampled = list(pool.map(self.sample, videos))
        else:
            sampled = [self.sample(v) for v in videos]
        return self.score_sampled(sampled, instructions)

    def score_sampled(self, sampled: Sequence[SampledVideo], instructions: Sequence[str]) -> list[RewardOutput]:
        """Score already sampled clips (see :meth:`sample`)."""
        texts = [vlm.prompt_text(self.processor, t, template=self.template) for t in instructions]
        # batch pairs of similar size together (frames, frame size, prompt length) so little is padding;
        # results go back in the caller's order
        order = sorted(
            range(len(texts)), key=lambda i: (len(sampled[i].frames), sampled[i].frames.shape[1:3], len(texts[i]))
        )
        out: list[RewardOutput | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            probs = self._probs([texts[i] for i in chunk], [sampled[i] for i in chunk])
            for i, p in zip(chunk, probs, strict=True):
                out[i] = output_from_probs(p)
        return out  # type: ignore[return-value]

    def _probs(self, texts: Sequence[str], sampled: Sequence[SampledVideo]) -> np.ndarray:
        import torch

        batch = vlm.encode(self.processor, self.family, texts, sampled, padding_side="left")
        device = next(self.model.parameters()).device
        batch = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}
        head = self._score_head()
        with torch.inference_mode():
            if head is not None:  # project the last hidden state onto the five score rows of the LM head only
                hidden = self.model.model(**batch, use_cache=False).last_hidden_state[:, -1]
                logits = torch.nn.functional.linear(hidden.to(head[0].device, head[0].dtype), *head)
                return torch.softmax(logits.float(), dim=-1).cpu().numpy()
            logits = self.model(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]
        return vlm.probs_from_logits(logits, self.score_ids).cpu().numpy()

    def _score_head(self) -> tuple[Any, Any] | None:
        """(weight, bias) rows of the LM head for "1".."5" when the head is a plain ``nn.Linear`` on top of
        ``model.model`` (Qwen-VL ``*ForConditionalGeneration``); None means: use the full forward. Softmax over
        these five logits equals :func:`roboreward.scoring.vlm.probs_from_logits` on the full vocabulary logits, without
        the vocabulary-wide projection (151k rows)."""
        import torch

        head = self.model.get_output_embeddings() if hasattr(self.model, "get_output_embeddings") else None
        if type(head) is not torch.nn.Linear or not hasattr(self.model, "model"):  # quantized / unusual heads
            return None
        # sliced on every call (5 rows: negligible), so a model that is being trained is always read fresh
        ids = torch.tensor(self.score_ids, device=head.weight.device)
        weight = head.weight.detach().index_select(0, ids)
        bias = head.bias.detach().index_select(0, ids) if head.bias is not None else None
        return weight, bias
