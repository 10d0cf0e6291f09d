"""Training data for the project's entity recognizer: corpus splits as spaCy ``.spacy`` files
whose entity labels are the linker's groups, and the NER config set to the dataset's language.

``spacy train`` then trains the NER on them (project.yml's ``ner`` command). A label is mapped
through the dataset's ``label_map`` (:func:`~spacy_syncabel.evaluation.end_to_end.entity_type`),
so the NER predicts exactly the types the linker links in and the end-to-end scores compare.

A corpus whose documents are not all annotated for every label (SPACCC joins three shared
tasks' layers; :attr:`~spacy_syncabel.types.CorpusDoc.annotated_labels`) also gets one corpus
per *layer* under ``OUTPUT/layers/NAME``: a layer's documents are those annotated for its
labels, with only its labels' entities. One NER trained on the joined corpus would learn that
every mention of a layer a document lacks is no mention (SPACCC's procedures, annotated in a
third of its training documents, were never predicted); one NER per layer
(:mod:`~spacy_syncabel.training.ner_layers`) learns each layer only where it was annotated.

``extra_train`` adds the documents of other splits to the NER's training split only (CANTEMIST
released its dev1 for training): those splits then no longer measure the NER. A split the NER
is scored or selected on (one of ``splits``) is refused.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import srsly

from ..corpus import docs_to_spacy, read_corpus
from ..errors import Errors, Warnings
from ..evaluation.end_to_end import entity_type
from ..types import CorpusDoc

PathLike = Union[str, Path]


LAYERS_FILE = "layers.json"
FULL_LAYER = "all"


def relabel(docs: Sequence[CorpusDoc], label_map: Mapping[str, Optional[str]]) -> list:
    """Copies of ``docs`` whose mention labels (and annotated labels) are mapped to the
    linker's groups."""
    return [dataclasses.replace(
        d, mentions=[dataclasses.replace(m, label=entity_type(m.label, label_map))
                     for m in d.mentions],
        annotated_labels=None if d.annotated_labels is None else sorted(
            {entity_type(lab, label_map) for lab in d.annotated_labels}))
        for d in docs]


def annotation_layers(docs: Sequence[CorpusDoc]) -> List[Dict[str, object]]:
    """The layers an NER is trained on, one each: ``{"name", "labels"}``. Labels every
    document is annotated for form one layer (``all``); each label that only some documents
    are annotated for is a layer of its own. A corpus annotated for everything everywhere
    has one layer (or none, without labels)."""
    labels = sorted({m.label for d in docs for m in d.mentions})
    partial = [lab for lab in labels if any(not d.is_annotated(lab) for d in docs)]
    full = [lab for lab in labels if lab not in partial]
    layers: List[Dict[str, object]] = []
    if full:
        layers.append({"name": FULL_LAYER, "labels": full})
    layers.extend({"name": lab, "labels": [lab]} for lab in partial)
    return layers


def layer_docs(docs: Sequence[CorpusDoc], labels: Sequence[str]) -> List[CorpusDoc]:
    """The documents annotated for every label of ``labels``, with only their mentions."""
    keep = set(labels)
    return [dataclasses.replace(d, mentions=[m for m in d.mentions if m.label in keep],
                                annotated_labels=None)
            for d in docs if all(d.is_annotated(lab) for lab in keep)]


def write_ner_corpus(corpus_dir: PathLike, output_dir: PathLike, *, lang: str,
                     label_map: Optional[Mapping[str, Optional[str]]] = None,
                     config: Optional[PathLike] = None, splits: Sequence[str] = ("train", "dev"),
                     extra_train: Sequence[str] = (),
                     settings: Optional[Mapping[str, object]] = None,
                     spans_key: Optional[str] = None,
                     ) -> Dict[str, Dict[str, object]]:
    """Write ``OUTPUT/{split}.spacy`` from ``CORPUS/{split}.jsonl`` (entities relabelled,
    overlapping mentions reduced to the longest: spaCy's ``ner`` predicts no nested entities),
    and, from ``config``, ``OUTPUT/config.cfg`` with ``[nlp] lang`` set. When the training
    split's documents are not all annotated for every label, also one corpus per layer
    (:func:`annotation_layers`) in ``OUTPUT/layers/NAME/{split}.spacy`` and the layers in
    ``OUTPUT/layers.json``. ``extra_train``: more splits (``CORPUS/{name}.jsonl``) whose
    documents are added to the first split's (the training split's) only. Returns per split the
    number of docs, entities and entities per label (and ``layers``; the training split also
    the documents each extra split added). ``settings``: dotted config keys
    (``training.optimizer.use_averages``) set in the copied config, each one it must already
    have, except those of a component the config lacks (W620: skipped). ``spans_key``: every
    mention, nested and overlapping ones included, also goes into ``doc.spans[spans_key]``
    (a span categorizer's training data, e.g. configs/spancat.cfg); refused (E674) for a
    corpus with annotation layers."""
    import spacy
    from spacy.tokens import DocBin
    from spacy.util import load_config

    corpus_dir, output_dir = Path(corpus_dir), Path(output_dir)
    cfg = None
    if config is not None:  # read (and the settings checked) before anything is written
        cfg = load_config(Path(config), interpolate=False)
        for key, value in (settings or {}).items():
            *sections, name = key.split(".")
            if sections[:1] == ["components"] and len(sections) > 1 \
                    and sections[1] not in cfg.get("components", {}):
                # a setting for an architecture this config does not use (the CNN's tables
                # in a transformer config): skipped; a missing key elsewhere is a typo (E602)
                warnings.warn(Warnings.W620.format(key=key, component=sections[1],
                                                   config=config))
                continue
            node = cfg
            for section in sections:
                node = node.get(section) if isinstance(node, dict) else None
            if not isinstance(node, dict) or name not in node:
                raise ValueError(Errors.E602.format(key=key, config=config))
            node[name] = value
    clash = sorted(set(extra_train) & set(splits))
    if clash or (extra_train and not splits):
        raise ValueError(Errors.E600.format(extra=", ".join(extra_train),
                                            splits=", ".join(splits)))
    output_dir.mkdir(parents=True, exist_ok=True)
    nlp = spacy.blank(lang)
    summary: Dict[str, Dict[str, object]] = {}
    corpora = {split: relabel(read_corpus(corpus_dir / f"{split}.jsonl"), label_map or {})
               for split in splits}
    added = {name: relabel(read_corpus(corpus_dir / f"{name}.jsonl"), label_map or {})
             for name in extra_train}
    for extra in added.values():
        corpora[splits[0]] = corpora[splits[0]] + extra
    layers = annotation_layers(corpora[splits[0]]) if splits else []
    layered = len(layers) > 1 or any(layer["name"] != FULL_LAYER for layer in layers)
    if layered and spans_key is not None:
        raise ValueError(Errors.E674.format(layers=", ".join(str(la["name"]) for la in layers)))
    stale = output_dir / LAYERS_FILE
    if stale.exists():
        stale.unlink()
    for split in splits:
        path = corpus_dir / f"{split}.jsonl"
        docs = docs_to_spacy(nlp, corpora[split], spans_key=spans_key)
        labels = Counter(e.label_ for d in docs for e in d.ents)
        if not labels:
            warnings.warn(Warnings.W201.format(split=split, path=path))
        DocBin(docs=docs, store_user_data=True).to_disk(output_dir / f"{split}.spacy")
        summary[split] = {"docs": len(docs), "entities": sum(labels.values()),
                          "labels": dict(sorted(labels.items()))}
        if spans_key is not None:
            summary[split]["spans"] = sum(len(d.spans[spans_key]) for d in docs)
        if split == splits[0] and added:
            summary[split]["extra_train"] = {name: len(d) for name, d in added.items()}
        if layered:
            for layer in layers:
                part = docs_to_spacy(nlp, layer_docs(corpora[split], layer["labels"]))
                folder = output_dir / "layers" / str(layer["name"])
                folder.mkdir(parents=True, exist_ok=True)
                DocBin(docs=part, store_user_data=True).to_disk(folder / f"{split}.spacy")
                layer.setdefault("docs", {})[split] = len(part)
    if layered:
        srsly.write_json(output_dir / LAYERS_FILE, {"layers": layers})
        summary["layers"] = {"layers": layers}
    if cfg is not None:
        cfg["nlp"]["lang"] = lang
        cfg.to_disk(output_dir / "config.cfg")
    return summary


__all__ = ["annotation_layers", "layer_docs", "relabel", "write_ner_corpus"]
