"""Judge backends: an OpenAI-compatible server, or a local Hugging Face model.

Both yield ``(item, raw answer)`` from ``stream(items)``, as the synthesis generators do.

* :class:`OpenAIJudge` is the ``synth`` command's HTTP client (``OpenAIGenerator``: concurrent
  requests kept in flight, retries with back-off, ``Retry-After``) with the judge's request
  body: the question, greedy decoding, a few tokens, and by default a JSON schema that limits
  the answer to ``{"label": EXACT|BROAD|NARROW|WRONG}``: ``response_format`` of type
  ``json_schema`` (OpenAI, vLLM, llama.cpp's ``llama-server``) or ``json_object`` with a
  ``schema`` (llama-cpp-python's server), or ``none`` for servers that support neither.
* :class:`HFJudge` scores the four labels as continuations of the answer ``{"label": "`` with a
  local causal LM and answers with the likeliest, so its answers always parse.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..errors import Errors
from ..synthesis.backends import OpenAIGenerator, _concept_seed
from .judge import LABELS, VERDICT_SCHEMA, JudgeItem

ANSWER_PREFIX = '{"label": "'
RESPONSE_FORMATS = ("json_schema", "json_object", "none")


class OpenAIJudge(OpenAIGenerator):
    """Judge questions to an OpenAI-compatible chat-completions server.

    response_format: ``json_schema``, ``json_object`` (with the schema, as llama-cpp-python's
        server reads it) or ``none``: how the server is asked to constrain the answer.
    Other arguments: as ``OpenAIGenerator`` (base_url, model, api_key_env, concurrency,
    max_retries, backoff, timeout, ...); ``max_tokens`` defaults to 24, temperature to 0.
    """

    name = "openai-judge"

    def __init__(self, base_url: str, model: str, *, response_format: str = "json_schema",
                 max_tokens: int = 24, temperature: float = 0.0, **kwargs: Any) -> None:
        if response_format not in RESPONSE_FORMATS:
            raise ValueError(Errors.E383.format(
                problem=f"response_format must be one of {list(RESPONSE_FORMATS)}, got "
                        f"{response_format!r}"))
        super().__init__(base_url, model, max_tokens=max_tokens, temperature=temperature,
                         top_p=1.0, **kwargs)
        self.response_format = response_format

    def describe(self, p: JudgeItem) -> str:  # type: ignore[override]
        return f"mention {p.key}"

    def payload(self, p: JudgeItem) -> Dict[str, Any]:  # type: ignore[override]
        body: Dict[str, Any] = {
            "model": self.model_name, "messages": p.messages, "max_tokens": self.max_tokens,
            "temperature": self.temperature, "top_p": self.top_p, "n": 1,
        }
        if self.seed is not None:
            body["seed"] = _concept_seed(self.seed, p.key)
        if self.response_format == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "verdict", "strict": True, "schema": VERDICT_SCHEMA}}
        elif self.response_format == "json_object":
            body["response_format"] = {"type": "json_object", "schema": VERDICT_SCHEMA}
        body.update(self.extra_body)
        return body


class HFJudge:
    """A local causal LM that picks the likeliest label after ``{"label": "``.

    model: a model loader (``spacy_syncabel.models``); default SmolLM2-135M-Instruct.
    batch_size: mentions per forward pass (four rows each).
    """

    name = "hf-judge"

    def __init__(self, model: Optional[Callable] = None, batch_size: int = 4,
                 max_prompt_tokens: int = 1536, num_threads: Optional[int] = None) -> None:
        if batch_size < 1:
            raise ValueError(Errors.E383.format(problem=f"batch_size must be >= 1, got {batch_size}"))
        self.loader = model
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        self.num_threads = num_threads
        self.model = None
        self.tokenizer = None
        self.model_name = "hf"

    def load(self) -> None:
        if self.model is not None:
            return
        from ..models import load_for_inference

        self.model, self.tokenizer = load_for_inference(self.loader, self.num_threads)
        self.model_name = str(getattr(self.model.config, "_name_or_path", "") or "hf")

    def prompt_ids(self, item: JudgeItem) -> List[int]:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(item.messages, tokenize=False,
                                           add_generation_prompt=True)
        else:
            text = "\n\n".join(m["content"] for m in item.messages) + "\n\n"
        ids = tok(text + ANSWER_PREFIX, add_special_tokens=False)["input_ids"]
        return ids[-self.max_prompt_tokens:]

    def scores(self, items: Sequence[JudgeItem]) -> List[Dict[str, float]]:
        """Log-probability of each label (its tokens after the answer prefix) per item. The rows
        are padded on the left with explicit positions, so only the logits of the label
        positions are computed (``logits_to_keep``)."""
        import inspect

        import torch

        self.load()
        tok, model = self.tokenizer, self.model
        labels = [tok(label, add_special_tokens=False)["input_ids"] for label in LABELS]
        rows = [self.prompt_ids(item) + lab for item in items for lab in labels]
        width = max(len(ids) for ids in rows)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in rows])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in rows])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        keep = max(len(lab) for lab in labels) + 1
        extra = ({"logits_to_keep": keep}
                 if "logits_to_keep" in inspect.signature(model.forward).parameters else {})
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(model.device),
                           attention_mask=mask.to(model.device),
                           position_ids=positions.to(model.device), **extra).logits.float()
        logp = torch.log_softmax(logits[:, -keep:], dim=-1)  # position width-keep+t predicts
        out: List[Dict[str, float]] = []
        for i in range(len(items)):
            per: Dict[str, float] = {}
            for j, (label, lab) in enumerate(zip(LABELS, labels)):
                row = logp[4 * i + j]
                # the label's tokens are the row's last len(lab) ids
                per[label] = sum(float(row[keep - 1 - len(lab) + t, tid])
                                 for t, tid in enumerate(lab))
            out.append(per)
        return out

    def stream(self, items: Iterable[JudgeItem]) -> Iterator[Tuple[JudgeItem, str]]:
        batch: List[JudgeItem] = []
        for item in items:
            batch.append(item)
            if len(batch) == self.batch_size:
                yield from self._answer(batch)
                batch = []
        if batch:
            yield from self._answer(batch)

    def _answer(self, batch: List[JudgeItem]) -> Iterator[Tuple[JudgeItem, str]]:
        for item, per in zip(batch, self.scores(batch)):
            best = max(per, key=per.__getitem__)
            yield item, json.dumps({"label": best, "logprobs": {k: round(v, 3)
                                                                 for k, v in per.items()}})

    def close(self) -> None:
        pass

    def __enter__(self) -> "HFJudge":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
