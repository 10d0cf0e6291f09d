"""Rendering a mention in its context as the LM prompt, and the label → group map.

One function, :func:`render_prompt`, is used both at inference (the component) and to
build training examples, so the two can never drift apart.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import spacy

from .errors import Errors
from .text import clean_name

SEP_TOKEN = "<SEP>"
VERBS: Dict[str, str] = {"es": "es", "fr": "est", "en": "is", "de": "ist", "it": "è", "pt": "é"}
DEFAULT_TEMPLATE = "{sentence}" + SEP_TOKEN + "[{mention}] {verb}"
_WS = re.compile(r"\s+")
_CHARS_PER_TOKEN_MAX = 16
_BRACKETS = str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")"})


def verb_for(lang: str) -> str:
    """The copula used by the default template for a language (English when unknown)."""
    return VERBS.get(lang.split("_")[0].lower(), VERBS["en"])


@dataclass(frozen=True)
class PromptTemplate:
    """How a prompt and a completion are written.

    ``prompt`` must contain ``{sentence}`` (the marked sentence) and ``{mention}``; it may use
    ``{verb}`` and ``{type}``. The completion is ``" " + name`` followed by EOS; the names of a
    composite mention are joined by ``sep`` with no blank after it, as SynCABEL writes them:
    ``" a<SEP>b"``.
    """

    prompt: str = DEFAULT_TEMPLATE
    verb: str = "is"
    sep: str = SEP_TOKEN

    def __post_init__(self) -> None:
        missing = [f for f in ("{sentence}", "{mention}") if f not in self.prompt]
        if missing:
            raise ValueError(Errors.E026.format(fields=missing, template=self.prompt))

    def render(self, marked_sentence: str, mention: str, type_: str) -> str:
        return self.prompt.format(sentence=marked_sentence, mention=mention, verb=self.verb,
                                  type=type_)

    @staticmethod
    def completion(names: Sequence[str], sep: str = SEP_TOKEN) -> str:
        """The target text after the prompt, ``" a<SEP>b"`` (EOS is appended at
        tokenization)."""
        return " " + sep.join(clean_name(n) for n in names)


def _clean_piece(text: str) -> str:
    return _WS.sub(" ", text.translate(_BRACKETS))


def context_bounds(text: str, start: int, end: int, sentence: Optional[Tuple[int, int]],
                   window_chars: Optional[int]) -> Tuple[int, int]:
    """Character span of the context: the sentence when known, else the whole text; clipped
    to ``window_chars`` on each side of the mention unless ``window_chars`` is None."""
    lo, hi = (sentence if sentence is not None else (0, len(text)))
    lo, hi = min(lo, start), max(hi, end)
    if window_chars is None:
        return lo, hi
    lo = max(lo, start - window_chars)
    hi = min(hi, end + window_chars)
    if sentence is None or lo > sentence[0] or hi < sentence[1]:
        # do not cut words in half at a window edge
        while lo > 0 and lo < start and not text[lo - 1].isspace():
            lo += 1
        while hi < len(text) and hi > end and not text[hi].isspace():
            hi -= 1
    return lo, hi


def mark_mention(text: str, start: int, end: int, type_: str, lo: int = 0,
                 hi: Optional[int] = None) -> Tuple[str, str]:
    """Return (marked context, cleaned mention) for ``text[start:end]`` inside ``text[lo:hi]``.

    As SynCABEL writes it: white space runs become one blank, ``[]{}`` in the text become
    ``()``, and the mention is written ``[mention]{TYPE}``."""
    hi = len(text) if hi is None else hi
    mention = clean_name(text[start:end])
    left = _clean_piece(text[lo:start]).lstrip()
    right = _clean_piece(text[end:hi]).rstrip()
    return f"{left}[{mention}]{{{type_}}}{right}", mention


def render_prompt(text: str, start: int, end: int, type_: str, *,
                  sentence: Optional[Tuple[int, int]] = None,
                  template: PromptTemplate = PromptTemplate(),
                  window_chars: Optional[int] = 400,
                  count_tokens: Optional[Callable[[str], int]] = None,
                  max_tokens: Optional[int] = None) -> str:
    """Render the prompt for the mention ``text[start:end]`` of type ``type_``.

    The context is the ``sentence`` (character bounds; the whole text when None), cut to
    ``window_chars`` characters on each side of the mention. ``window_chars`` None or 0 keeps
    the whole sentence: SynCABEL's input ``{marked sentence}<SEP>[{mention}] {verb}``.

    With ``count_tokens`` and ``max_tokens``, a prompt over the budget gets the widest
    window (found by bisection) that fits; the mention itself is always kept whole, so a
    prompt whose mention alone is over the budget is returned with no context.
    """
    def render(window: Optional[int]) -> str:
        lo, hi = context_bounds(text, start, end, sentence, window)
        marked, mention = mark_mention(text, start, end, type_, lo, hi)
        return template.render(marked, mention, type_)

    window = window_chars if window_chars is not None and window_chars > 0 else None
    budget = count_tokens is not None and max_tokens is not None
    if window is None and budget:
        # a side longer than this many characters never fits (no tokenizer averages 16
        # characters a token): never tokenize a whole long note for one mention
        lo, hi = context_bounds(text, start, end, sentence, None)
        if max(start - lo, hi - end) > _CHARS_PER_TOKEN_MAX * max_tokens:
            window = _CHARS_PER_TOKEN_MAX * max_tokens
    prompt = render(window)
    if not budget or count_tokens(prompt) <= max_tokens:
        return prompt
    if window is None:
        lo, hi = context_bounds(text, start, end, sentence, None)
        window = max(start - lo, hi - end)
    fits, over = 0, window  # the mention alone is the floor, ``window`` is over the budget
    best = render(0)
    while over - fits > 4:
        mid = (fits + over) // 2
        candidate = render(mid)
        if count_tokens(candidate) <= max_tokens:
            fits, best = mid, candidate
        else:
            over = mid
    return best


@spacy.registry.misc("spacy_syncabel.LabelMap.v1")
def label_map(mapping: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, Optional[str]]:
    """A label → KB group map. A label mapped to null is linked against all groups."""
    return dict(mapping or {})


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
