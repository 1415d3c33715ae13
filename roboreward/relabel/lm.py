"""Language-model backends of the relabeling stages (text and video+text chat).

One small interface, :class:`LM`: ``generate(request) -> text`` and ``generate_batch(requests)`` (parallel
or batched where the backend can). Two real implementations:

* :class:`TransformersLM` (here) — a local transformers model by Hub repo id or local path (text LLMs such as
  Qwen3-4B-Instruct-2507, GGUF files, or Qwen VLMs such as Qwen2.5-VL-7B-Instruct / Qwen3-VL for video),
  loaded lazily on the first call that misses the cache, ``trust_remote_code`` off by default;
* :class:`~roboreward.relabel.openai_lm.OpenAIChatLM` — any OpenAI-compatible chat-completions server.

:class:`CachedLM` puts an :class:`~roboreward.relabel.cache.LMCache` in front of any backend: every finished
call is stored under a content key (model, messages, settings, frame hash) and never made again.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from roboreward.relabel.cache import LMCache, content_key, hash_frames
from roboreward.video import SampledVideo

#: Default models of the relabeling stages (as in the paper).
DEFAULT_TEXT_MODEL = "Qwen/Qwen3-4B-Instruct-2507"
DEFAULT_VIDEO_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


class LMError(RuntimeError):
    """A call that could not be completed (server down, timeouts after every retry, 4xx, model failure)."""


@dataclass(eq=False)
class LMRequest:
    """One chat turn: a user ``prompt``, optionally with a ``video`` (sampled frames), and generation settings.

    ``temperature`` 0 means greedy decoding; ``seed`` makes sampled decoding reproducible. ``prefill`` starts
    the assistant's answer (e.g. ``{"instruction": "`` to hold a small model to JSON); the returned text
    includes it. ``stage`` only labels the call (logs, tests) and is not part of the cache key.
    """

    prompt: str
    video: SampledVideo | None = None
    system: str | None = None
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None
    prefill: str = ""
    stage: str = ""

    def key_material(self, model: str) -> dict[str, Any]:
        """What determines the answer (the video by a hash of its frames and their indices)."""
        video = None
        if self.video is not None:
            v = self.video
            video = hash_frames(v.frames, v.indices, v.source_fps)
        return {
            "model": model,
            "system": self.system,
            "prompt": self.prompt,
            "video": video,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "prefill": self.prefill,
        }


@dataclass
class LMResult:
    """The answer to one request: ``text``, or ``error`` when the call failed; ``cached`` for cache hits."""

    text: str | None
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


class LM(ABC):
    """A chat model. ``name`` identifies the model in cache keys; ``supports_video`` says if it sees videos."""

    name: str = "lm"
    supports_video: bool = False

    @abstractmethod
    def generate(self, request: LMRequest) -> str:
        """The assistant's answer to ``request``; raises :class:`LMError` when the call fails."""

    def generate_batch(self, requests: Sequence[LMRequest]) -> list[LMResult]:
        """Answer several independent requests (default: one after the other). Never raises per request."""
        out = []
        for r in requests:
            try:
                out.append(LMResult(self.generate(r)))
            except LMError as exc:
                out.append(LMResult(None, error=str(exc)))
        return out

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, models)."""


# ----------------------------------------------------------------------------------------------------------
# cache in front of any backend
# ----------------------------------------------------------------------------------------------------------


class CachedLM:
    """Wraps an :class:`LM` with an :class:`LMCache`; only misses reach the backend (in one batch).

    Errors are not cached, so a later run retries them. ``calls`` counts calls made (hits excluded). With a
    cache, a request already in flight from another thread (another episode relabeled at the same time) is not
    sent again: the second thread waits for the first one's answer.
    """

    def __init__(self, lm: LM, cache: LMCache | None) -> None:
        self.lm = lm
        self.cache = cache
        self.calls = 0
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}

    @property
    def name(self) -> str:
        return self.lm.name

    @property
    def supports_video(self) -> bool:
        return self.lm.supports_video

    def key(self, request: LMRequest) -> str:
        return content_key(request.key_material(self.lm.name))

    def generate_batch(self, requests: Sequence[LMRequest]) -> list[LMResult]:
        keys = [self.key(r) for r in requests] if self.cache is not None else [""] * len(requests)
        # identical requests in one batch are asked once
        first: dict[str, int] = {}
        unique = [i for i in range(len(requests)) if first.setdefault(keys[i] or str(i), i) == i]
        # claim each key, or wait for the thread that is asking it now
        waiting: dict[str, Future] = {}
        with self._lock:
            for i in unique:
                if keys[i] in self._inflight:
                    waiting[keys[i]] = self._inflight[keys[i]]
                elif keys[i]:
                    self._inflight[keys[i]] = Future()
        owned = [i for i in unique if keys[i] not in waiting]
        by_key: dict[str, LMResult] = {}
        try:
            # looked up after the claim, so an answer a finished owner stored meanwhile is found
            for i in owned:
                hit = self.cache.get(keys[i]) if keys[i] and self.cache is not None else None
                if hit is not None:
                    by_key[keys[i]] = LMResult(hit, cached=True)
            ask = [i for i in owned if (keys[i] or str(i)) not in by_key]
            by_key.update({keys[i] or str(i): res for i, res in zip(ask, self._ask(requests, keys, ask), strict=True)})
        finally:
            self._release([keys[i] for i in owned if keys[i]], by_key)
        by_key.update({k: fut.result() for k, fut in waiting.items()})  # owners never wait: no deadlock
        asked = set(ask)
        results = []
        for i in range(len(requests)):
            res = by_key[keys[i] or str(i)]
            results.append(res if i in asked else LMResult(res.text, res.error, cached=True))
        return results

    def _release(self, owned_keys: list[str], answers: dict[str, LMResult]) -> None:
        """Hand the owned calls' answers (a failure if there is none) to waiting threads and forget them."""
        with self._lock:
            for k in owned_keys:
                fut = self._inflight.pop(k, None)
                if fut is not None:
                    fut.set_result(answers.get(k, LMResult(None, "the request failed in another thread")))

    def _ask(self, requests: Sequence[LMRequest], keys: list[str], unique: list[int]) -> list[LMResult]:
        """Send the ``unique`` requests to the backend, storing each answer in the cache as it arrives."""
        if not unique:
            return []

        def store(i: int, res: LMResult) -> LMResult:
            if res.ok and self.cache is not None:
                self.cache.put(keys[i], res.text or "", requests[i].key_material(self.lm.name))
            return res

        workers = int(getattr(self.lm, "concurrency", 1) or 1)
        if workers > 1 and len(unique) > 1:
            # a concurrent backend (HTTP): store each answer as it arrives, so a kill in the middle of a
            # batch loses only the calls still in flight, not the finished ones beside them
            with ThreadPoolExecutor(max_workers=min(workers, len(unique))) as pool:
                answers = list(pool.map(lambda i: store(i, self.lm.generate_batch([requests[i]])[0]), unique))
        else:
            batch = self.lm.generate_batch([requests[i] for i in unique])
            answers = [store(i, res) for i, res in zip(unique, batch, strict=True)]
        with self._lock:
            self.calls += len(unique)
        return answers

    def generate(self, request: LMRequest) -> LMResult:
        return self.generate_batch([request])[0]


# ----------------------------------------------------------------------------------------------------------
# local transformers models
# ----------------------------------------------------------------------------------------------------------


def _load_text_model(
    model_id: str,
    *,
    dtype: str,
    device_map: str | dict | None,
    gguf_file: str | None,
    trust_remote_code: bool,
    revision: str | None,
) -> tuple[Any, Any]:
    """A text LLM (``AutoModelForCausalLM``, safetensors or a GGUF file) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from roboreward.scoring.vlm import torch_dtype

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "revision": revision}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(model_id, **kwargs)
    if device_map is not None:
        kwargs["device_map"] = device_map
    if not gguf_file:
        kwargs["use_safetensors"] = True  # never unpickle a pytorch_model.bin
    return AutoModelForCausalLM.from_pretrained(model_id, dtype=torch_dtype(dtype), **kwargs), tokenizer


class TransformersLM(LM):
    """A local transformers chat model: text LLM (``AutoModelForCausalLM``) or Qwen VLM (video + text).

    ``model`` is a Hub repo id or a local folder; ``gguf_file`` loads a GGUF checkpoint in that folder.
    The weights load on the first :meth:`generate` (a fully cached re-run never loads them). Requests with
    the same settings are generated together in batches of ``batch_size`` (left padding). (One class of about
    150 lines: chat formatting, encoding and batched generation share the lazily loaded model and its locks.)
    """

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        dtype: str = "auto",
        device_map: str | dict | None = None,
        gguf_file: str | None = None,
        batch_size: int = 4,
        trust_remote_code: bool = False,
        revision: str | None = None,
        name: str | None = None,
    ) -> None:
        self.model_id = str(model)
        self.name = name or (f"{self.model_id}/{gguf_file}" if gguf_file else self.model_id)
        self.dtype = dtype
        self.device_map = device_map
        self.gguf_file = gguf_file
        self.batch_size = max(1, int(batch_size))
        self.trust_remote_code = trust_remote_code
        self.revision = revision
        self._model: Any = None
        self._processor: Any = None
        self._family: str = "other"
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()
        self.supports_video = self._is_vlm()

    def _is_vlm(self) -> bool:
        if self.gguf_file:  # transformers reads GGUF for text architectures only (and parsing one is slow)
            return False
        from transformers import AutoConfig

        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code, "revision": self.revision}
        try:
            config = AutoConfig.from_pretrained(self.model_id, **kwargs)
        except Exception as exc:
            raise LMError(f"cannot load the config of {self.model_id!r}: {type(exc).__name__}: {exc}") from None
        return getattr(config, "vision_config", None) is not None

    def _load(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            from roboreward.scoring.vlm import load_model, model_family

            settings: dict[str, Any] = {
                "dtype": self.dtype,
                "device_map": self.device_map,
                "trust_remote_code": self.trust_remote_code,
                "revision": self.revision,
            }
            try:
                if self.supports_video:
                    model, processor = load_model(self.model_id, **settings)
                    self._family = model_family(model.config)
                else:
                    model, processor = _load_text_model(self.model_id, gguf_file=self.gguf_file, **settings)
            except Exception as exc:
                raise LMError(f"cannot load model {self.model_id!r}: {type(exc).__name__}: {exc}") from None
            model.eval()
            self._model, self._processor = model, processor

    @property
    def tokenizer(self) -> Any:
        return getattr(self._processor, "tokenizer", self._processor)

    def _chat_text(self, request: LMRequest) -> str:
        if request.video is not None:
            content: Any = [{"type": "video"}, {"type": "text", "text": request.prompt}]
        elif self.supports_video:
            content = [{"type": "text", "text": request.prompt}]
        else:
            content = request.prompt
        messages = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": content})
        # enable_thinking=False: hybrid Qwen3 templates answer directly (ignored by other templates)
        text = self._processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        return text + request.prefill

    def _encode(self, requests: Sequence[LMRequest]) -> Any:
        from roboreward.scoring.vlm import encode

        texts = [self._chat_text(r) for r in requests]
        if requests[0].video is not None:
            return encode(self._processor, self._family, texts, [r.video for r in requests])  # type: ignore[misc]
        tok = self.tokenizer
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        old = tok.padding_side
        tok.padding_side = "left"
        try:
            return tok(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        finally:
            tok.padding_side = old

    def _generate_group(self, requests: Sequence[LMRequest]) -> list[str]:
        import torch

        r0 = requests[0]
        if r0.video is not None and not self.supports_video:
            raise LMError(f"{self.name} is a text model and cannot take a video")
        batch = self._encode(requests).to(self._model.device)
        kwargs: dict[str, Any] = {"max_new_tokens": r0.max_tokens}
        if r0.temperature > 0:
            kwargs.update(do_sample=True, temperature=r0.temperature, top_p=0.95)
            torch.manual_seed(r0.seed or 0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        tok = self.tokenizer
        with torch.inference_mode():
            out = self._model.generate(**batch, **kwargs, pad_token_id=tok.pad_token_id)
        new = out[:, batch["input_ids"].shape[1] :]
        texts = tok.batch_decode(new, skip_special_tokens=True)
        return [(r.prefill + t).strip() for r, t in zip(requests, texts, strict=True)]

    def generate(self, request: LMRequest) -> str:
        return self._run([request])[0]

    def _run(self, requests: Sequence[LMRequest]) -> list[str]:
        self._load()
        with self._gen_lock:
            try:
                return self._generate_group(requests)
            except LMError:
                raise
            except Exception as exc:
                raise LMError(f"{self.name}: generation failed: {type(exc).__name__}: {exc}") from None

    def generate_batch(self, requests: Sequence[LMRequest]) -> list[LMResult]:
        results: list[LMResult | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.video is not None, r.max_tokens, r.temperature, r.seed), []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                try:
                    texts = self._run([requests[i] for i in chunk])
                    for i, t in zip(chunk, texts, strict=True):
                        results[i] = LMResult(t)
                except LMError as exc:
                    for i in chunk:
                        results[i] = LMResult(None, error=str(exc))
        return [r for r in results if r is not None]
