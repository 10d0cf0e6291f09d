"""Per-concept prompts for synthetic training sentences.

The prompt text lives in ``prompts/{lang}.txt`` (see the header of ``prompts/es.txt`` for the
format); :class:`PromptBuilder` fills it for one KB concept with its preferred name, semantic
group, other names, definition and a few real sentences of the same group taken from a
training corpus as style examples.
"""
from __future__ import annotations

import random
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Set, Union

from ..errors import Errors, Warnings
from ._textfile import SectionedText, load_sectioned
from .parsing import words_of

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB
    from ..types import CorpusDoc

STYLES = ("clinical", "abstract")
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+")
_MULTI_NL = re.compile(r"\n{3,}")


@dataclass
class ConceptPrompt:
    """Everything a backend needs to write sentences for one concept."""

    code: str
    name: str
    group: str
    synonyms: List[str]
    definition: Optional[str]
    examples: List[str]
    lang: str
    style: str
    n_mentions: int
    system: str
    user: str
    prefix: str
    prompt_version: str
    seed: int = 0
    names: List[str] = field(default_factory=list)  # all KB names of the concept
    guided_header: str = ""  # few-shot prompts of the hf-guided backend ([guided.*] sections)
    guided_example: str = ""  # placeholders {mention} {sentence} {prefix}

    @property
    def messages(self) -> List[Dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]

    def plain_text(self) -> str:
        """The prompt for models without a chat template."""
        return f"{self.system}\n\n{self.user}\n\n"


def mention_cycle(p: ConceptPrompt, rng: random.Random) -> List[str]:
    """The mention of each of the ``p.n_mentions`` sentences: the preferred name first, then the
    other KB names in a shuffled order, cycling."""
    order = list(p.names or [p.name])
    rng.shuffle(order)
    if p.name in order:
        order.remove(p.name)
        order.insert(0, p.name)
    return [order[i % len(order)] for i in range(p.n_mentions)]


def corpus_vocabulary(docs: Iterable["CorpusDoc"]) -> Set[str]:
    """The folded words of a corpus's texts (the fluency filter's vocabulary)."""
    vocab: Set[str] = set()
    for doc in docs:
        vocab.update(words_of(doc.text))
    return vocab


def _format(template: str, values: Dict[str, object], path: str) -> str:
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(Errors.E072.format(path=path, problem=f"bad placeholder ({err!r})")) from None


def _bracket(text: str, start: int, end: int) -> str:
    return f"{text[:start]}[{text[start:end]}]{text[end:]}"


def style_examples_from_corpus(
    docs: Iterable["CorpusDoc"],
    kb: Optional["ConceptKB"] = None,
    min_words: int = 6,
    max_words: int = 45,
    max_per_group: int = 2000,
    seed: int = 0,
) -> Dict[str, List[str]]:
    """Sentences of a corpus with one mention in brackets, keyed by label and by KB group.

    The sentence is the one of ``doc.sentences`` holding the mention, else the text between
    sentence ends (. ! ? or newlines) around it.
    """
    pools: Dict[str, List[str]] = defaultdict(list)
    seen = set()
    for doc in docs:
        text = doc.text
        spans = doc.sentences or _split(text)
        for m in doc.mentions:
            span = next(((s, e) for s, e in spans if s <= m.start and m.end <= e), None)
            if span is None:
                continue
            s, e = span
            sent = _bracket(text[s:e], m.start - s, m.end - s)
            sent = " ".join(sent.split())
            if not min_words <= len(sent.split()) <= max_words or sent.count("[") != 1:
                continue
            keys = {m.label} if m.label else set()
            if kb is not None and m.code:
                for code in m.code.split("+"):
                    keys.update(kb.groups_of(kb.canonical_code(code)))
            for key in keys:
                if (key, sent) not in seen:
                    seen.add((key, sent))
                    pools[key].append(sent)
    rng = random.Random(seed)
    for key, pool in pools.items():
        if len(pool) > max_per_group:
            pools[key] = rng.sample(pool, max_per_group)
    return dict(pools)


def _split(text: str) -> List[tuple]:
    spans, start = [], 0
    for match in _SENT_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


class PromptBuilder:
    """Fill the prompt file of ``lang`` for KB concepts.

    kb: the :class:`ConceptKB`.
    lang: language of the prompt and of the sentences (``prompts/{lang}.txt``).
    style: ``clinical`` or ``abstract``; default from the prompt file.
    n_mentions: sentences per concept; default from the prompt file (5 for clinical Spanish, else 3).
    corpus: training documents (or a path ``read_corpus`` reads) for style examples.
    n_examples: style examples per prompt.
    max_synonyms: other names listed per prompt.
    prompt_file: a prompt file of your own instead of the packaged one.
    """

    def __init__(
        self,
        kb: "ConceptKB",
        lang: str = "es",
        style: Optional[str] = None,
        n_mentions: Optional[int] = None,
        corpus: Union[None, str, Path, Sequence["CorpusDoc"]] = None,
        n_examples: int = 3,
        max_synonyms: int = 10,
        min_words: int = 10,
        max_words: int = 30,
        seed: int = 0,
        prompt_file: Union[None, str, Path] = None,
    ) -> None:
        self.kb = kb
        self.lang = lang
        self.template: SectionedText = load_sectioned("prompts", lang, prompt_file)
        header = self.template.header
        self.style = style or header.get("default_style", "clinical")
        if self.style not in STYLES:
            raise ValueError(Errors.E078.format(problem=f"style '{self.style}' is not one of {STYLES}"))
        for section in ("system", "user", f"style.{self.style}"):
            if section not in self.template.sections:
                raise ValueError(Errors.E072.format(path=self.template.path,
                                                   problem=f"missing section [{section}]"))
        if n_mentions is None:
            n_mentions = int(header.get(f"n_mentions.{self.style}", 3))
        if n_mentions < 1:
            raise ValueError(Errors.E078.format(problem=f"n_mentions must be >= 1, got {n_mentions}"))
        if not 1 <= min_words <= max_words:
            raise ValueError(Errors.E078.format(problem=f"need 1 <= min_words <= max_words, got "
                                                        f"{min_words}, {max_words}"))
        self.n_mentions = n_mentions
        self.n_examples = n_examples
        self.max_synonyms = max_synonyms
        self.min_words, self.max_words = min_words, max_words
        self.seed = seed
        self.prefix = header.get("prefix", "SENTENCE:").strip()
        self.version = self.template.version
        self.examples: Dict[str, List[str]] = {}
        self.vocabulary: Optional[Set[str]] = None  # words of the corpus, for the fluency filter
        if corpus is not None:
            if isinstance(corpus, (str, Path)):
                from ..corpus import read_corpus

                corpus = read_corpus(corpus)
            corpus = list(corpus)
            self.vocabulary = corpus_vocabulary(corpus)
        if corpus is not None and n_examples > 0:
            self.examples = style_examples_from_corpus(corpus, kb, seed=seed)
            missing = [g for g in kb.groups if not self.examples.get(g)]
            if missing:
                warnings.warn(Warnings.W071.format(groups=missing), stacklevel=2)

    def group_of(self, code: str) -> str:
        groups = self.kb.groups_of(code)
        return groups[0] if groups else ""

    def build(self, code: str) -> ConceptPrompt:
        kb, sections, path = self.kb, self.template.sections, self.template.path
        name = kb.preferred_name(code)
        group = self.group_of(code)
        names = list(dict.fromkeys([name] + kb.synonyms_of(code)))
        synonyms = names[1:1 + self.max_synonyms]
        definition = kb.definition(code)
        rng = random.Random(f"{self.seed}|{code}")
        pool = self.examples.get(group, [])
        examples = rng.sample(pool, min(self.n_examples, len(pool))) if pool else []
        values: Dict[str, object] = {
            "code": code, "name": name, "group": group, "n": self.n_mentions,
            "style": sections[f"style.{self.style}"].strip(), "prefix": self.prefix,
            "min_words": self.min_words, "max_words": self.max_words,
            "synonyms": "; ".join(synonyms), "definition": definition or "",
            "examples": "\n".join(f"{self.prefix} {ex}" for ex in examples),
        }
        for block, present in (("synonyms_block", synonyms), ("definition_block", definition),
                               ("examples_block", examples)):
            text = sections.get(block, "")
            values[block] = _format(text, values, path) if present and text else ""
        user = _MULTI_NL.sub("\n\n", _format(sections["user"], values, path))
        user = re.sub(r"\n\n+(?=\S)", "\n", user).strip()  # blank lines left by empty blocks
        system = _format(sections["system"], values, path).strip()
        guided_header = _format(sections.get("guided.header", ""), values, path).strip()
        return ConceptPrompt(
            code=code, name=name, group=group, synonyms=synonyms, definition=definition,
            examples=examples, lang=self.lang, style=self.style, n_mentions=self.n_mentions,
            system=system, user=user, prefix=self.prefix, prompt_version=self.version,
            seed=self.seed, names=names, guided_header=guided_header,
            guided_example=sections.get("guided.example", "").strip(),
        )
