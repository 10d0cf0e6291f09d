"""Score a predictions file against a gold corpus with the paper's metric (the ``score`` command).

Two prediction formats, both read as untrusted input (UTF-8, coded errors naming file and line):

* JSONL, one mention a line: ``{"doc_id", "start", "end", "codes": [ranked codes]}``.
* The SynCABEL inference TSV (e.g. the published ``test_half.tsv``): ``filename``,
  ``start_span``, ``end_span`` (and/or ``mention_id``) and the top-1 ``Predicted_code``
  (``Predicted_CUI`` in some versions); an empty code is a miss.

A gold mention is matched by ``(doc id, start, end)`` (and its label, when the prediction
gives one: one span may hold mentions of two labels); a gold document holding a single
mention is also matched by a TSV row whose ``mention_id`` is the document's id (how the
marked-sentence TSV reader names its documents).
"""
from __future__ import annotations

import csv
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Sequence, Tuple, Union


from ..errors import Errors, Warnings
from ..textio import iter_lines, json_loads
from ..types import CorpusDoc, GoldMention
from .bootstrap import paired_difference
from .metrics import LinkItem, link_results, score_links, seen_code_set
from .places import Place, mention_places

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB

PathLike = Union[str, Path]
TSV_CODE_COLUMNS = ("Predicted_code", "Predicted_CUI")
Key = Tuple[str, int, int, str]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class Prediction:
    """Ranked predicted codes for one mention, and where they were read."""

    doc_id: str
    start: int
    end: int
    codes: Tuple[str, ...]
    line: int
    mention_id: Optional[str] = None
    label: str = ""


def _int(path: Path, line: int, value: object, what: str) -> int:
    if isinstance(value, bool):
        value = None
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        number = None
    if number is None or number < 0:
        raise ValueError(Errors.E132.format(
            path=path, line=line, problem=f"'{what}' must be a non-negative integer, got {value!r}"))
    return number


def _check_span(path: Path, line: int, start: int, end: int) -> None:
    if end <= start:
        raise ValueError(Errors.E132.format(path=path, line=line,
                                            problem=f"empty or reversed span {start}-{end}"))


def read_jsonl_predictions(path: PathLike) -> List[Prediction]:
    """Read ``{"doc_id", "start", "end", "codes"}`` lines (blank lines skipped)."""
    path = Path(path)
    out: List[Prediction] = []
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json_loads(line)
        except ValueError as err:
            raise ValueError(Errors.E132.format(path=path, line=lineno,
                                                problem=f"invalid JSON ({err})")) from None
        if not isinstance(obj, dict):
            raise ValueError(Errors.E132.format(path=path, line=lineno,
                                                problem="expected one JSON object"))
        missing = [k for k in ("doc_id", "start", "end", "codes") if k not in obj]
        if missing:
            raise ValueError(Errors.E132.format(
                path=path, line=lineno, problem=f"missing field(s) {', '.join(missing)}"))
        doc_id = obj["doc_id"]
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
            raise ValueError(Errors.E132.format(path=path, line=lineno,
                                                problem=f"'doc_id' must be a string, got {doc_id!r}"))
        codes = obj["codes"]
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise ValueError(Errors.E132.format(
                path=path, line=lineno, problem="'codes' must be a list of code strings, best first"))
        start = _int(path, lineno, obj["start"], "start")
        end = _int(path, lineno, obj["end"], "end")
        _check_span(path, lineno, start, end)
        label = obj.get("label") or ""
        if not isinstance(label, str):
            raise ValueError(Errors.E132.format(path=path, line=lineno,
                                                problem=f"'label' must be a string, got {label!r}"))
        out.append(Prediction(str(doc_id), start, end,
                              tuple(c.strip() for c in codes if c.strip()), lineno, None, label))
    return out


def _tsv_rows(path: Path) -> Iterator[Tuple[int, Dict[str, str], List[str]]]:
    """(line number, row, header) of a tab-separated file with a header (csv quoting)."""
    lines = iter_lines(path)
    header: Optional[List[str]] = None
    reader = csv.reader((text for _, text in lines), delimiter="\t")
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ValueError(Errors.E132.format(path=path, line=reader.line_num,
                                                problem=f"unreadable TSV ({err})")) from None
        line = reader.line_num
        if header is None:
            header = [h.strip() for h in fields]
            continue
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise ValueError(Errors.E132.format(
                path=path, line=line,
                problem=f"{len(fields)} column(s) where the header has {len(header)}"))
        yield line, dict(zip(header, fields)), header


def read_tsv_predictions(path: PathLike) -> List[Prediction]:
    """Read a SynCABEL inference TSV: one row a mention, its top-1 ``Predicted_code``."""
    path = Path(path)
    out: List[Prediction] = []
    code_col: Optional[str] = None
    for lineno, row, header in _tsv_rows(path):
        if code_col is None:
            code_col = next((c for c in TSV_CODE_COLUMNS if c in header), None)
            has_offsets = {"filename", "start_span", "end_span"} <= set(header)
            if code_col is None or not (has_offsets or "mention_id" in header):
                raise ValueError(Errors.E131.format(path=path))
        mention_id = (row.get("mention_id") or "").strip() or None
        filename = (row.get("filename") or "").strip()
        if filename and row.get("start_span", "").strip() and row.get("end_span", "").strip():
            start = _int(path, lineno, row["start_span"], "start_span")
            end = _int(path, lineno, row["end_span"], "end_span")
            _check_span(path, lineno, start, end)
        elif mention_id is not None:
            start = end = -1
        else:
            raise ValueError(Errors.E132.format(
                path=path, line=lineno,
                problem="no 'filename', 'start_span', 'end_span' nor 'mention_id' value"))
        code = (row.get(code_col) or "").strip()
        out.append(Prediction(filename, start, end, (code,) if code else (), lineno, mention_id,
                              (row.get("label") or "").strip()))
    return out


def read_predictions(path: PathLike, format: str = "auto") -> List[Prediction]:
    """Read a predictions file; ``format``: ``auto`` (from the suffix), ``jsonl`` or ``tsv``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(Errors.E130.format(path=path))
    fmt = format
    if fmt == "auto":
        suffix = path.suffix.lower()
        fmt = "jsonl" if suffix in (".jsonl", ".json") else "tsv" if suffix in (".tsv", ".txt") else ""
    if fmt == "jsonl":
        return read_jsonl_predictions(path)
    if fmt == "tsv":
        return read_tsv_predictions(path)
    raise ValueError(Errors.E131.format(path=path))


def _first(values: Sequence[str]) -> str:
    return values[0] if values else ""


def pair_predictions(gold_docs: Sequence[CorpusDoc], predictions: Sequence[Prediction], *,
                     gold_source: str = "", pred_source: str = "",
                     ) -> List[Tuple[CorpusDoc, GoldMention, Optional[Prediction]]]:
    """``(doc, gold mention, its prediction or None)`` per gold mention; W130-W132 report
    unmatched and duplicate predictions and gold mentions without a prediction."""
    by_key: Dict[Key, Prediction] = {}
    by_mention: Dict[str, Prediction] = {}
    duplicates: List[str] = []
    for p in predictions:
        if p.start >= 0:
            key = (p.doc_id, p.start, p.end, p.label)
            if key in by_key:
                duplicates.append(f"line {p.line}")
            else:
                by_key[key] = p
        if p.mention_id is not None:
            by_mention.setdefault(p.mention_id, p)
    used = set()
    pairs: List[Tuple[CorpusDoc, GoldMention, Optional[Prediction]]] = []
    missing: List[str] = []
    for doc in gold_docs:
        for m in doc.mentions:
            p = (by_key.get((doc.id, m.start, m.end, m.label))
                 or by_key.get((doc.id, m.start, m.end, "")))
            if p is None and len(doc.mentions) == 1:
                p = by_mention.get(doc.id)
            if p is None:
                missing.append(f"{doc.id} {m.start}-{m.end}")
            else:
                used.add(id(p))
            pairs.append((doc, m, p))
    unmatched = [f"line {p.line}" for p in predictions if id(p) not in used
                 and (p.start < 0 or by_key.get((p.doc_id, p.start, p.end, p.label)) is p)]
    if unmatched:
        warnings.warn(Warnings.W130.format(n=len(unmatched), path=pred_source, gold=gold_source,
                                           first=_first(unmatched)), stacklevel=3)
    if missing:
        warnings.warn(Warnings.W131.format(n=len(missing), path=pred_source, gold=gold_source,
                                           first=_first(missing)), stacklevel=3)
    if duplicates:
        warnings.warn(Warnings.W132.format(n=len(duplicates), path=pred_source,
                                           first=_first(duplicates)), stacklevel=3)
    return pairs


def match_predictions(gold_docs: Sequence[CorpusDoc], predictions: Sequence[Prediction], *,
                      gold_source: str = "", pred_source: str = "",
                      places: Optional[Sequence[Sequence[Place]]] = None,
                      ) -> List[LinkItem]:
    """``(gold code, ranked predicted codes, label, document, start, end)`` per gold mention
    (the place from ``places``, default :func:`~.places.mention_places`; the pairing and its
    warnings: :func:`pair_predictions`)."""
    if places is None:
        places = mention_places(gold_docs)
    flat = [place for doc_places in places for place in doc_places]
    pairs = pair_predictions(gold_docs, predictions, gold_source=gold_source,
                             pred_source=pred_source)
    return [(m.code, list(p.codes) if p is not None else [], m.label, where, start, end)
            for (_, m, p), (where, start, end) in zip(pairs, flat)]


def check_gold_ids(gold_docs: Sequence[CorpusDoc], source: str = "") -> None:
    """E308 when two gold documents share an id (their mentions would be counted twice)."""
    counts = Counter(doc.id for doc in gold_docs)
    doc_id, n = counts.most_common(1)[0] if counts else ("", 0)
    if n > 1:
        raise ValueError(Errors.E308.format(path=source, id=doc_id, n=n))


def score_predictions(gold_docs: Sequence[CorpusDoc], predictions: Sequence[Prediction], *,
                      kb: Optional["ConceptKB"] = None, k: int = 5,
                      train: Optional[Sequence[CorpusDoc]] = None, gold_source: str = "",
                      pred_source: str = "", places: Optional[Sequence[Sequence[Place]]] = None,
                      bootstrap: int = 0, seed: int = 42) -> Dict[str, object]:
    """The paper's Recall@1/@k of ``predictions`` on ``gold_docs`` by the reference's rule
    (:mod:`.metrics`: one gold mention per place and label, NO_CODE dropped, exact code sets),
    per label and seen/unseen (with ``train``); with ``bootstrap`` resamples, document-level
    95% intervals (``recall@1_ci``). Gold with a document id twice (E308) or without one
    mention left to score (E050) is refused: its score would mean nothing."""
    check_gold_ids(gold_docs, gold_source)
    items = match_predictions(gold_docs, predictions, gold_source=gold_source,
                              pred_source=pred_source, places=places)
    seen = (seen_code_set((m.code for d in train for m in d.mentions), kb)
            if train is not None else None)
    report = score_links(items, (1, k), kb, seen, bootstrap=bootstrap, seed=seed)
    if not report["n_mentions"]:
        raise ValueError(Errors.E050.format(path=gold_source))
    results, _ = link_results(items, kb)
    report.update({
        "n_predictions": len(predictions),
        "n_without_prediction": sum(1 for r in results if not r.predicted),
        "gold": gold_source,
        "predictions": pred_source,
        "kb": getattr(kb, "source", None) if kb is not None else None,
    })
    return report


def load_kb(path: PathLike, languages: Optional[Sequence[str]] = None) -> "ConceptKB":
    """A KB file or release folder (any format ``kb.read_file`` reads, ``languages`` as its
    ``languages``) or a saved KB folder (``kb.jsonl``)."""
    from ..kb import ConceptKB, read_file

    path = Path(path)
    if path.is_dir() and ((path / "kb.jsonl").exists() or (path / "meta.json").exists()):
        return ConceptKB.from_disk(path)
    with warnings.catch_warnings():  # ambiguity reports are about generation, not scoring
        warnings.simplefilter("ignore")
        return read_file(path, languages=list(languages) if languages else None)


def score_files(gold: PathLike, predictions: PathLike, *, kb: Optional[PathLike] = None,
                train: Optional[PathLike] = None, k: int = 5, format: str = "auto",
                bootstrap: int = 0, seed: int = 42,
                kb_languages: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """Read the gold corpus (any format ``read_corpus`` reads), the predictions and the KB
    (``kb_languages``: :func:`load_kb`'s ``languages``), and score them
    (:func:`score_predictions`)."""
    from ..corpus import read_corpus

    gold_docs = read_corpus(gold)
    preds = read_predictions(predictions, format=format)
    train_docs = read_corpus(train) if train is not None else None
    kb_obj = load_kb(kb, kb_languages) if kb is not None else None
    return score_predictions(gold_docs, preds, kb=kb_obj, k=k, train=train_docs, gold_source=str(gold),
                             pred_source=str(predictions),
                             places=mention_places(gold_docs, gold), bootstrap=bootstrap,
                             seed=seed)


def compare_files(gold: PathLike, predictions_a: PathLike, predictions_b: PathLike, *,
                  kb: Optional[PathLike] = None, bootstrap: int = 1000, seed: int = 42,
                  format: str = "auto") -> Dict[str, object]:
    """Recall@1 of two prediction files on the same gold corpus, their difference, its
    interval and paired bootstrap p-value (:func:`~.bootstrap.paired_difference`)."""
    from ..corpus import read_corpus
    gold_docs = read_corpus(gold)
    places = mention_places(gold_docs, gold)
    kb_obj = load_kb(kb) if kb is not None else None
    results = []
    for path in (predictions_a, predictions_b):
        items = match_predictions(gold_docs, read_predictions(path, format=format),
                                  gold_source=str(gold), pred_source=str(path), places=places)
        results.append(link_results(items, kb_obj)[0])
    out = paired_difference(results[0], results[1], bootstrap, seed)
    out.update({"gold": str(gold), "a": str(predictions_a), "b": str(predictions_b),
                "kb": str(kb) if kb is not None else None})
    return out
