"""Assemble the pipeline for raw notes: sentence segmenter + the trained NER + the linker.

The NER pipeline (what ``spacy train`` wrote) gives the tokenizer and its components (its
``tok2vec`` or transformer with the ``ner`` listening to it); a segmenter factory goes first
and the ``syncabel_linker`` of a linker pipeline (``training/DATASET/model-best``) last. The
folder is written by :func:`~.pipeline_io.save_pipeline`, so it loads with ``spacy.load``
offline and its config names no absolute path.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..errors import Errors, Warnings
from ..evaluation.end_to_end import entity_setters
from ..guarded import exists_in
from ..textio import read_json
from ..output_paths import check_outputs, check_replaceable
from .pipeline_io import save_pipeline

PathLike = Union[str, Path]
NO_SEGMENTER = ("", "none")
AUTO = "auto"
# files of a linker folder worth keeping beside the assembled pipeline
LINKER_RECORDS = ("training.json", "calibration.json")


def _linker_name(nlp) -> Optional[str]:
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory == "syncabel_linker":
            return name
    return None


def ner_labels(nlp) -> List[str]:
    """Labels of the components of ``nlp`` that set entities and have a label set."""
    labels = set()
    for name in entity_setters(nlp):
        labels |= set(getattr(nlp.get_pipe(name), "labels", ()) or ())
    return sorted(labels)


def check_labels(ner_nlp, linker, ner_path: PathLike = "", linker_path: PathLike = "") -> None:
    """E200 unless every NER label is a key of the linker's label map, a KB group or one
    of its ``labels_discard``."""
    groups = list(linker.kb.groups)
    unknown = [lab for lab in ner_labels(ner_nlp)
               if lab not in linker.label_map and lab not in groups
               and lab not in getattr(linker, "labels_discard", ())]
    if unknown:
        raise ValueError(Errors.E200.format(ner=ner_path, labels=unknown, linker=linker_path,
                                            groups=groups))


def assemble_pipeline(linker_path: PathLike, ner_path: PathLike, output: PathLike, *,
                      segmenter: str = "sentencizer", force: bool = False,
                      proposer_corpus: Optional[PathLike] = None,
                      nil_threshold: Union[float, str, None] = None,
                      threshold_corpus: Optional[PathLike] = None,
                      threshold_mentions: int = 2000,
                      spans: Optional[PathLike] = None, spans_keep: str = "nested",
                      ) -> Dict[str, Any]:
    """Write ``output``: ``segmenter`` (a factory name; ``none`` for no segmenter; taken from
    the linker pipeline when it has one of that factory), every component of the NER pipeline
    ``ner_path``, then the linker of ``linker_path``. Returns what was assembled (also saved as
    ``assemble.json`` in the folder). An existing ``output`` is replaced (once the new folder
    is complete) only with ``force`` (E302); it may not be nor hold an input (E300).

    ``proposer_corpus``: a training corpus; a ``syncabel_dictionary_proposer`` built from its
    mentions and the linker's KB names goes between the NER and the linker.
    ``nil_threshold``: the linker answers NIL under this top score; ``"auto"``: the one chosen
    on the gold mentions of ``threshold_corpus`` (at most ``threshold_mentions``;
    :mod:`~spacy_syncabel.linking.abstention`), never the corpus scored end to end; None or
    ``"none"``: the linker's own.

    ``spans``: a span categorizer pipeline (``train-spans``: its own ``tok2vec`` and a
    ``spancat`` writing ``doc.spans``) whose components go after the proposer, then a
    ``syncabel_span_union`` (``spans_keep``: nested, all or source) writing the span group
    the linker then links (its ``spans_key``): nested mentions beside the NER's."""
    import spacy
    from spacy.language import Language

    from ..models import is_fine_tuned

    linker_path, ner_path = Path(linker_path), Path(ner_path)
    check_outputs({"The assembled pipeline": output},
                  {"the linker pipeline": linker_path, "the NER pipeline": ner_path})
    check_replaceable(output, force)
    threshold = parse_threshold(nil_threshold, threshold_corpus)
    linker_nlp = spacy.load(linker_path)
    name = _linker_name(linker_nlp)
    if name is None:
        raise ValueError(Errors.E204.format(path=linker_path))
    linker = linker_nlp.get_pipe(name)
    if not is_fine_tuned(linker.lm):
        warnings.warn(Warnings.W200.format(path=linker_path))
    nlp = spacy.load(ner_path)
    if nlp.lang != linker_nlp.lang:
        raise ValueError(Errors.E202.format(ner=ner_path, ner_lang=nlp.lang, linker=linker_path,
                                            linker_lang=linker_nlp.lang))
    setters = entity_setters(nlp)
    if not setters:
        raise ValueError(Errors.E201.format(path=ner_path))
    check_labels(nlp, linker, ner_path, linker_path)
    if segmenter.lower() not in NO_SEGMENTER:
        # the linker pipeline's own segmenter (the one its prompts were rendered with) when it
        # has one of that factory, with its settings; else a new one
        own = [n for n in linker_nlp.pipe_names
               if linker_nlp.get_pipe_meta(n).factory == segmenter]
        if own:
            nlp.add_pipe(own[0], source=linker_nlp, first=True)
        elif not Language.has_factory(segmenter):
            raise ValueError(Errors.E203.format(factory=segmenter))
        else:
            nlp.add_pipe(segmenter, first=True)
    labels = ner_labels(nlp)
    nlp.add_pipe(name, name="syncabel_linker", source=linker_nlp)
    info: Dict[str, Any] = {"segmenter": None if segmenter.lower() in NO_SEGMENTER else segmenter,
            "ner": str(ner_path), "ner_components": setters, "labels": ner_labels(nlp),
            "linker": str(linker_path)}
    if proposer_corpus is not None:
        info["proposer"] = _add_proposer(nlp, proposer_corpus, labels)
    linker_settings: Dict[str, Any] = {}
    if spans is not None:
        info["spans"] = _add_spans(nlp, Path(spans), spans_keep, labels)
        linker_settings["spans_key"] = info["spans"]["spans_key"]
    if threshold is not None:
        info["nil_threshold"] = _set_threshold(
            nlp, None if threshold == AUTO else float(threshold), threshold_corpus,
            threshold_mentions)
    info["pipeline"] = list(nlp.pipe_names)
    nlp.meta["name"] = f"syncabel_{Path(output).parent.name or 'pipeline'}"
    nlp.meta["description"] = ("Sentence segmenter + NER + syncabel_linker, assembled from "
                               f"{ner_path} and {linker_path}.")
    from .pipeline_io import DPO_META_KEY, META_KEY

    for key in (META_KEY, DPO_META_KEY):  # the recipes the linker was trained with
        if key in linker_nlp.meta:
            nlp.meta[key] = linker_nlp.meta[key]
    extra = {"assemble.json": info}
    for record in LINKER_RECORDS:
        if exists_in(linker_path, record):  # records of a folder that may be hostile
            extra[record] = read_json(linker_path / record, root=linker_path, kind="json")
    assembled = nlp.get_pipe("syncabel_linker")
    save_pipeline(nlp, output, extra_files=extra, fine_tuned=is_fine_tuned(linker.lm),
                  settings=assembled.settings, component_settings=linker_settings)
    return info


def parse_threshold(value: Union[float, str, None],
                    corpus: Optional[PathLike]) -> Union[float, str, None]:
    """``nil_threshold`` as a number, ``"auto"`` (E542 without a corpus to choose it on) or
    None (``"none"``)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if isinstance(value, str) and value.strip().lower() == AUTO:
        if corpus is None:
            raise ValueError(Errors.E542)
        return AUTO
    try:
        return float(value)
    except ValueError:
        raise ValueError(Errors.E543.format(value=value)) from None


def _add_proposer(nlp, corpus_path: PathLike, labels: List[str]) -> Dict[str, Any]:
    """A dictionary proposer before the linker, from the training mentions of ``labels`` in
    ``corpus_path`` and the linker's KB names."""
    from ..corpus import read_corpus
    from ..recognition.proposer import add_dictionary_proposer

    linker = nlp.get_pipe("syncabel_linker")
    proposer = add_dictionary_proposer(nlp, read_corpus(corpus_path), kb=linker.kb,
                                       label_map=dict(linker.label_map), labels=labels,
                                       before="syncabel_linker")
    return {"corpus": str(corpus_path), "phrases": len(proposer.dictionary),
            "labels": list(proposer.labels)}


def _add_spans(nlp, path: Path, keep: str, labels: List[str]) -> Dict[str, Any]:
    """The components of the span categorizer pipeline ``path`` before the linker (its
    ``tok2vec`` renamed ``spans_tok2vec``: right before its listeners, which read the
    ``doc.tensor`` it sets), then a ``syncabel_span_union`` into the group the linker reads."""
    import spacy

    from ..recognition.span_union import FACTORY, SPANS_KEY

    sc_nlp = spacy.load(path)
    cats = [n for n in sc_nlp.pipe_names if sc_nlp.get_pipe_meta(n).factory == "spancat"]
    if len(cats) != 1:
        raise ValueError(Errors.E672.format(path=path, found=cats))
    source_key = sc_nlp.get_pipe(cats[0]).key
    unknown = sorted(set(sc_nlp.get_pipe(cats[0]).labels) - set(labels))
    if unknown:
        raise ValueError(Errors.E673.format(path=path, labels=unknown, ner=labels))
    names = []
    for name in sc_nlp.pipe_names:
        new = f"spans_{name}" if name in nlp.pipe_names or name == "tok2vec" else name
        nlp.add_pipe(name, name=new, source=sc_nlp, before="syncabel_linker")
        names.append(new)
    nlp.add_pipe(FACTORY, before="syncabel_linker",
                 config={"source_key": source_key, "spans_key": SPANS_KEY, "keep": keep})
    return {"path": str(path), "components": names, "source_key": source_key,
            "spans_key": SPANS_KEY, "keep": keep}


def _set_threshold(nlp, threshold: Optional[float], corpus_path: Optional[PathLike],
                   limit: int) -> Dict[str, Any]:
    """Set the linker's NIL threshold: ``threshold``, or (None) the one chosen on the gold
    mentions of ``corpus_path``. With a fitted probability calibrator it is a threshold on the
    calibrated probability (one scale whatever path ranked the mention), else on the raw top
    score (the ``threshold`` setting)."""
    from ..evaluation.abstention import gold_mention_scores
    from ..linking.abstention import choose_threshold

    linker = nlp.get_pipe("syncabel_linker")
    calibrator = getattr(linker, "calibrator", None)
    scale = "probability" if calibrator is not None else "score"
    out: Dict[str, Any] = {"scale": scale}
    if threshold is None:
        from ..corpus import read_corpus

        scores, correct = gold_mention_scores(nlp, read_corpus(corpus_path), limit=limit,
                                              key=scale)
        threshold, curve = choose_threshold(scores, correct)
        out.update({"corpus": str(corpus_path), "mentions": len(scores),
                    "curve": [{k: round(v, 4) for k, v in row.items()} for row in curve]})
    out["threshold"] = float(threshold or 0.0)
    if calibrator is not None:
        calibrator.nil_threshold = out["threshold"] or None
    else:
        linker.settings = linker.settings.replace(threshold=out["threshold"])
    return out


__all__ = ["assemble_pipeline", "check_labels", "ner_labels"]
