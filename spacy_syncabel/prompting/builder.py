"""The prompt of a mention, from plain data: its text, char offsets, type and sentence bounds.

:class:`PromptBuilder` is the one place a mention becomes a prompt: the spaCy component,
training (SFT examples, negatives, calibration, DPO), ``render`` and evaluation all build their
prompts with it, so they cannot drift apart. It cuts a mention to ``max_mention_tokens`` (W100),
renders it in its sentence (:func:`~.template.render_prompt`) within ``context_chars`` and
``max_context_tokens``, and tokenizes it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from ..errors import Warnings
from .encoding import encode_prompt
from .template import PromptTemplate, render_prompt


@dataclass(frozen=True)
class Mention:
    """One mention as plain data: the whole ``text`` it is in, its char offsets, the type
    written after it in the prompt (``[mention]{TYPE}``) and the char bounds of its
    sentence(s) (None: the whole text is its context)."""

    text: str
    start: int
    end: int
    type: str
    sentence: Optional[Tuple[int, int]] = None

    @property
    def surface(self) -> str:
        return self.text[self.start:self.end]


class PromptBuilder:
    """Prompts of mentions for one template, tokenizer and budget.

    ``context_chars``: characters kept on each side of the mention within its sentence (0 or
    None: the whole sentence); ``max_context_tokens``: the prompt's token budget (the context
    narrows until it fits); ``max_mention_tokens``: a longer mention is cut (W100, once per
    builder). ``tokenizer`` may be None for prompts rendered without a budget.
    """

    def __init__(self, template: PromptTemplate, tokenizer: Any = None, *,
                 context_chars: Optional[int] = 0, max_context_tokens: int = 256,
                 max_mention_tokens: int = 64) -> None:
        self.template = template
        self.tokenizer = tokenizer
        self.context_chars = context_chars
        self.max_context_tokens = max_context_tokens
        self.max_mention_tokens = max_mention_tokens
        self.warned_long = False

    @classmethod
    def from_settings(cls, template: PromptTemplate, tokenizer: Any, settings: Any
                      ) -> "PromptBuilder":
        """A builder with the budget of a :class:`~spacy_syncabel.linking.LinkSettings`."""
        return cls(template, tokenizer, context_chars=settings.context_chars,
                   max_context_tokens=settings.max_context_tokens,
                   max_mention_tokens=settings.max_mention_tokens)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as a prompt (the tokenizer's special tokens included)."""
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def mention_end(self, text: str, start: int, end: int) -> int:
        """The mention's end char, cut so that ``text[start:end]`` fits
        ``max_mention_tokens`` (W100 the first time)."""
        limit = self.max_mention_tokens
        if end - start <= limit:  # a token holds at least one character
            return end
        surface = text[start:end]
        enc = self.tokenizer(surface, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if len(offsets) <= limit:
            return end
        if not self.warned_long:
            self.warned_long = True
            warnings.warn(Warnings.W100.format(text=surface[:40], n_tokens=len(offsets),
                                               limit=limit))
        return start + int(offsets[limit - 1][1])

    def mention_text(self, mention: Mention) -> str:
        """The mention as linked (cut to the token budget)."""
        return mention.text[mention.start:self.mention_end(mention.text, mention.start,
                                                           mention.end)]

    def prompt(self, mention: Mention, fit: bool = True) -> str:
        """The prompt text of ``mention`` (within the token budget when ``fit``)."""
        return render_prompt(mention.text, mention.start,
                             self.mention_end(mention.text, mention.start, mention.end),
                             mention.type, sentence=mention.sentence, template=self.template,
                             window_chars=self.context_chars,
                             count_tokens=self.count_tokens if fit else None,
                             max_tokens=self.max_context_tokens)

    def prompt_ids(self, mention: Mention) -> List[int]:
        """Token ids of the prompt; tokenizes once unless the context must shrink."""
        ids = encode_prompt(self.tokenizer, self.prompt(mention, fit=False))
        if len(ids) > self.max_context_tokens:
            ids = encode_prompt(self.tokenizer, self.prompt(mention))
        return ids

    def lazy_ids(self, mentions: Sequence[Mention]) -> "LazyPromptIds":
        """The mentions' prompt ids, each rendered on first access."""
        return LazyPromptIds(self, mentions)


class LazyPromptIds(Sequence):
    """The mentions' prompt ids, rendered and tokenized on first access: with the cascade on,
    the engine reads only those of the mentions it sends to the LM."""

    def __init__(self, builder: PromptBuilder, mentions: Sequence[Mention]) -> None:
        self.builder, self.mentions = builder, mentions
        self._ids: List[Optional[List[int]]] = [None] * len(mentions)

    def __len__(self) -> int:
        return len(self.mentions)

    def __getitem__(self, i: int) -> List[int]:  # type: ignore[override]
        ids = self._ids[i]
        if ids is None:
            ids = self._ids[i] = self.builder.prompt_ids(self.mentions[i])
        return ids


__all__ = ["Mention", "PromptBuilder", "LazyPromptIds"]
