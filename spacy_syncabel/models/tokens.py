"""The tokenizer's side of linking: the ``<SEP>`` special token and the tokenizer's fingerprint."""
from __future__ import annotations

import hashlib
import inspect
import json
from typing import TYPE_CHECKING, List, Optional


if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


DEFAULT_SEP = "<SEP>"


def tokenizer_fingerprint(tokenizer: "PreTrainedTokenizerBase") -> str:
    """sha256 over the tokenizer's vocabulary and special tokens (stable across save/load)."""
    vocab = sorted(tokenizer.get_vocab().items())
    named = {}
    for attr in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            named[attr] = str(value)
    extra = sorted(str(t) for t in _extra_special_tokens(tokenizer))
    payload = json.dumps({"vocab": vocab, "special": named, "extra": extra}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _extra_special_tokens(tokenizer: "PreTrainedTokenizerBase") -> List[str]:
    for attr in ("extra_special_tokens", "additional_special_tokens"):
        try:
            value = getattr(tokenizer, attr)
        except Exception:  # noqa: BLE001
            continue
        if isinstance(value, dict):
            return [str(v) for v in value.values()]
        if value:
            return [str(v) for v in value]
    return []


def _token_id(tokenizer: "PreTrainedTokenizerBase", token: str) -> Optional[int]:
    vocab = tokenizer.get_vocab()
    if token in vocab:
        return int(vocab[token])
    return None


def ensure_sep_token(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", sep: str = DEFAULT_SEP) -> int:
    """Make ``sep`` a special token of ``tokenizer`` and return its id.

    Adds it when missing (as an extra special token, so it is never split) and
    resizes the model's embeddings to ``len(tokenizer)``. Idempotent.
    """
    tok_id = _token_id(tokenizer, sep)
    if tok_id is None:
        params = inspect.signature(tokenizer.add_special_tokens).parameters
        if "replace_extra_special_tokens" in params:  # transformers >= 5
            tokenizer.add_special_tokens({"extra_special_tokens": [sep]}, replace_extra_special_tokens=False)
        elif "replace_additional_special_tokens" in params:  # transformers 4.x
            tokenizer.add_special_tokens(
                {"additional_special_tokens": [sep]}, replace_additional_special_tokens=False
            )
        else:  # pragma: no cover
            tokenizer.add_tokens([sep], special_tokens=True)
        tok_id = _token_id(tokenizer, sep)
        if tok_id is None:  # pragma: no cover
            tok_id = int(tokenizer.convert_tokens_to_ids(sep))
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return int(tok_id)
