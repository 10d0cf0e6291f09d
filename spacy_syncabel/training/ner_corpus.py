"""Training data for the project's entity recognizer: corpus splits as spaCy ``.spacy`` files
whose entity labels are the linker's groups, and the NER config set to the dataset's language.

``spacy train`` then trains the NER on them (project.yml's ``ner`` command). A label is mapped
through the dataset's ``label_map`` (:func:`~spacy_syncabel.evaluation.end_to_end.entity_type`),
so the NER predicts exactly the types the linker links in and the end-to-end scores compare.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

from ..errors import Warnings
from ..evaluation.end_to_end import entity_type
from ..types import CorpusDoc

PathLike = Union[str, Path]


def relabel(docs: Sequence[CorpusDoc], label_map: Mapping[str, Optional[str]]) -> list:
    """Copies of ``docs`` whose mention labels are mapped to the linker's groups."""
    return [dataclasses.replace(d, mentions=[dataclasses.replace(
        m, label=entity_type(m.label, label_map)) for m in d.mentions]) for d in docs]


def write_ner_corpus(corpus_dir: PathLike, output_dir: PathLike, *, lang: str,
                     label_map: Optional[Mapping[str, Optional[str]]] = None,
                     config: Optional[PathLike] = None, splits: Sequence[str] = ("train", "dev"),
                     ) -> Dict[str, Dict[str, object]]:
    """Write ``OUTPUT/{split}.spacy`` from ``CORPUS/{split}.jsonl`` (entities relabelled,
    overlapping mentions reduced to the longest: spaCy's ``ner`` predicts no nested entities),
    and, from ``config``, ``OUTPUT/config.cfg`` with ``[nlp] lang`` set. Returns per split the
    number of docs, entities and entities per label."""
    import spacy
    from spacy.tokens import DocBin
    from spacy.util import load_config

    from ..corpus import docs_to_spacy, read_corpus

    corpus_dir, output_dir = Path(corpus_dir), Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    nlp = spacy.blank(lang)
    summary: Dict[str, Dict[str, object]] = {}
    for split in splits:
        path = corpus_dir / f"{split}.jsonl"
        docs = docs_to_spacy(nlp, relabel(read_corpus(path), label_map or {}))
        labels = Counter(e.label_ for d in docs for e in d.ents)
        if not labels:
            warnings.warn(Warnings.W201.format(split=split, path=path))
        DocBin(docs=docs, store_user_data=True).to_disk(output_dir / f"{split}.spacy")
        summary[split] = {"docs": len(docs), "entities": sum(labels.values()),
                          "labels": dict(sorted(labels.items()))}
    if config is not None:
        cfg = load_config(Path(config), interpolate=False)
        cfg["nlp"]["lang"] = lang
        cfg.to_disk(output_dir / "config.cfg")
    return summary


__all__ = ["relabel", "write_ner_corpus"]
