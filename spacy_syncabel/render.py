"""The ``render`` command: the exact prompt and target text of every gold mention.

A corpus is read as at evaluation, each text goes through the pipeline's components before
``syncabel_linker`` (so its own sentence segmenter sets the sentences,
:func:`~spacy_syncabel.prompting.docs.prepare_doc`), the gold mentions become ``doc.ents`` and
each one is rendered by the linker's :class:`~spacy_syncabel.prompting.PromptBuilder`, as at
inference and in training. The target is the completion the training would use
(:class:`~spacy_syncabel.training.targets.TargetWriter`).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Union

import spacy
from spacy.language import Language
from spacy.util import filter_spans

from . import pipeline as _factories  # noqa: F401 - registers the linker and segmenter
from .corpus import read_corpus
from .errors import Errors, Warnings
from .pipes import find_linker
# the corpus's docs as the linker sees them, importable here as before
from .prompting.docs import LINKER, doc_mention, gold_spans, prepare_doc  # noqa: F401
from .prompting.docs import split_tokens_at  # noqa: F401
from .training.targets import TargetWriter
from .types import CorpusDoc


def render_docs(nlp: Language, docs: Sequence[CorpusDoc],
                stats: Optional[Dict[str, Any]] = None) -> Iterator[Dict[str, Any]]:
    """One record per gold mention: ``{"doc_id", "start", "end", "label", "prompt",
    "target", "code"}``; mentions that match no token are counted in ``stats``."""
    linker = find_linker(nlp)
    builder = linker.prompt_builder
    targets = TargetWriter(linker.kb, linker.template.sep)
    stats = stats if stats is not None else {}
    stats.setdefault("mentions", 0)
    stats.setdefault("unaligned", [])
    for cdoc in docs:
        doc = prepare_doc(nlp, cdoc)
        pairs = gold_spans(doc, cdoc)
        doc.ents = filter_spans([s for _, s in pairs if s is not None])
        has_sents, text = doc.has_annotation("SENT_START"), doc.text
        for m, span in pairs:
            stats["mentions"] += 1
            if span is None:
                stats["unaligned"].append(f"{cdoc.id}:{m.start}-{m.end}")
                continue
            group = linker.group_for(m.label)
            prompt = builder.prompt(doc_mention(span, group, has_sents, text))
            yield {"doc_id": cdoc.id, "start": m.start, "end": m.end, "label": m.label,
                   "prompt": prompt, "target": targets(span.text, m.code, group),
                   "code": m.code}


def render(pipeline: Union[str, Path], corpus: Union[str, Path], output: Union[str, Path],
           limit: int = 0) -> Dict[str, Any]:
    """Write ``output`` (JSONL, one line per gold mention of ``corpus``) with the prompts the
    pipeline's linker renders and their targets; returns counts."""
    nlp = spacy.load(pipeline)
    find_linker(nlp, pipeline)  # E181 before any work
    docs = read_corpus(corpus)
    if limit:
        docs = docs[:limit]
    if not any(d.mentions for d in docs):
        raise ValueError(Errors.E182.format(path=corpus))
    stats: Dict[str, Any] = {}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as f:  # readable: non-ASCII left as it is
        for record in render_docs(nlp, docs, stats):
            f.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
    unaligned = stats.pop("unaligned")
    if unaligned:
        warnings.warn(Warnings.W180.format(n=len(unaligned), path=corpus, first=unaligned[0]))
    stats.update(written=stats["mentions"] - len(unaligned), unaligned=len(unaligned),
                 docs=len(docs), output=str(output))
    return stats
