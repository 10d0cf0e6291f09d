"""Prompts and completions as token ids, with the tokenizer's own spelling of every name."""
from __future__ import annotations

from typing import List, Optional, Sequence

from ..errors import Errors
from ..text import clean_name
from .template import SEP_TOKEN


def encode_prompt(tokenizer, prompt: str) -> List[int]:
    """Token ids of a prompt, with the tokenizer's own special tokens (BOS when it adds one)."""
    return list(tokenizer(prompt, add_special_tokens=True)["input_ids"])


def after_sep_ids(tokenizer, names: Sequence[str], sep_token: str = SEP_TOKEN
                  ) -> List[List[int]]:
    """Token ids of each name as the tokenizer spells it right after ``sep_token`` (the
    second and later names of a composite completion): the ids of ``sep_token + name`` minus
    those of ``sep_token`` alone. Per tokenizer, whatever it does after a special token (a
    byte-level BPE starts a new word without a blank; a SentencePiece one may add its ``▁``).
    E210 when the separator is not a token of its own before a name."""
    if not names:
        return []
    sep_ids = list(tokenizer(sep_token, add_special_tokens=False)["input_ids"])
    enc = tokenizer([sep_token + n for n in names], add_special_tokens=False)["input_ids"]
    return [strip_sep(sep_ids, list(ids), name, sep_token) for ids, name in zip(enc, names)]


def strip_sep(sep_ids: Sequence[int], ids: Sequence[int], name: str, sep_token: str
              ) -> List[int]:
    """``ids`` (of ``sep_token + name``) without the separator's id (E210 when the separator
    is not one token, or ``ids`` do not start with it, or nothing is left)."""
    n = len(sep_ids)
    if n != 1 or list(ids[:n]) != list(sep_ids) or len(ids) == n:
        raise ValueError(Errors.E210.format(sep=sep_token, name=name, ids=list(ids[:n + 3]),
                                            sep_ids=list(sep_ids)))
    return list(ids[n:])


def encode_completion(tokenizer, names: Sequence[str], sep_id: Optional[int] = None,
                      sep_token: str = SEP_TOKEN) -> List[int]:
    """Token ids of the completion ``" a<SEP>b"`` then EOS: the first name as ``" " + name``
    tokenized alone (exactly as the tries store names), each later one after ``sep_id`` as
    the tokenizer spells it right after the separator (:func:`after_sep_ids`, exactly as the
    after-separator tries store them)."""
    names = [clean_name(n) for n in names]
    ids: List[int] = []
    if names:
        ids += tokenizer(" " + names[0], add_special_tokens=False)["input_ids"]
    if len(names) > 1:
        if sep_id is None:
            raise ValueError("A composite completion needs the separator token id.")
        for part in after_sep_ids(tokenizer, names[1:], sep_token):
            ids += [sep_id] + part
    return ids + [tokenizer.eos_token_id]
