"""The prompt template and :func:`render_prompt`: a mention marked in its context, as text."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

from ..errors import Errors
from ..text import clean_name

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
