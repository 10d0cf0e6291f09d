"""The linker as training sees it: what it reads of a ``syncabel_linker`` component.

Training builds its pipelines through spaCy's registry (``nlp.add_pipe("syncabel_linker")``)
and never imports the component's module: it reads the KB, tokenizer, settings and engine
the component holds, and renders prompts with the component's
:class:`~spacy_syncabel.prompting.PromptBuilder`, the same one inference uses.
"""
from __future__ import annotations

from typing import Any, Optional, Protocol

from ..prompting import PromptBuilder, PromptTemplate


class Linker(Protocol):
    """A ready ``syncabel_linker`` (``set_model`` called), as training uses it."""

    vocab: Any
    template: PromptTemplate
    settings: Any  # LinkSettings
    engine: Any  # LinkingEngine

    @property
    def kb(self) -> Any: ...

    @property
    def tokenizer(self) -> Any: ...

    @property
    def lm(self) -> Any: ...

    @property
    def prompt_builder(self) -> PromptBuilder: ...

    def group_for(self, label: str) -> Optional[str]: ...


__all__ = ["Linker"]
