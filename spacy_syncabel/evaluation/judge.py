"""LLM-as-a-judge: grade each wrong prediction EXACT, BROAD, NARROW or WRONG (the ``judge`` command).

Exact code matching calls every prediction that is not the gold code wrong, yet many of them are
synonyms, or a broader or narrower concept of the KB. A judge LLM reads the mention in its
sentence, the KB names of the gold concept and of the predicted one, and answers with one label:

* ``EXACT``: the predicted concept says what the mention says (as well as the gold does).
* ``BROAD``: right, but more general than the mention (it drops a detail the mention states).
* ``NARROW``: more specific than the mention supports.
* ``WRONG``: another clinical entity.

Mentions whose prediction has the gold's code set are ``CORRECT`` without asking; a mention
without a prediction, or whose predicted code has no name in the KB, is ``WRONG`` without asking
(``"source": "rule"``). Gold ``NO_CODE`` and gold outside the KB are left out, as by ``score``.

The output is append-only JSONL, one line per mention (``key`` = ``doc_id|start|end|label``),
flushed as each answer arrives: a re-run skips the mentions it holds and asks again those whose
answer could not be read (``INVALID``); a partial last line left by a killed run is dropped
(W380). The table (overall and per label) is printed and saved beside it.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ..errors import Errors, Warnings
from ..prompting import context_bounds, mark_mention
from ..textio import json_loads
from .metrics import code_set, exclusion, is_linkable
from .scoring_file import Prediction, load_kb, pair_predictions, read_predictions

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB
    from ..types import CorpusDoc

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None  # type: ignore

PathLike = Union[str, Path]
LABELS = ("EXACT", "BROAD", "NARROW", "WRONG")
CORRECT = "CORRECT"
INVALID = "INVALID"
VERDICTS = (CORRECT,) + LABELS
PROMPT_VERSION = "syncabel-judge/2"
MAX_NAMES = 5
# words a judge may use for a label (the reference protocol's NO_RELATION among them)
_ALIASES = {
    "EXACT": "EXACT", "EQUIVALENT": "EXACT", "SAME": "EXACT", "SYNONYM": "EXACT",
    "BROAD": "BROAD", "BROADER": "BROAD", "GENERAL": "BROAD", "MORE_GENERAL": "BROAD",
    "NARROW": "NARROW", "NARROWER": "NARROW", "SPECIFIC": "NARROW", "MORE_SPECIFIC": "NARROW",
    "WRONG": "WRONG", "NO_RELATION": "WRONG", "UNRELATED": "WRONG", "INCORRECT": "WRONG",
}
_WORD = re.compile(r"[A-Za-z_]+")

SYSTEM = ("You check the output of a biomedical entity-linking system. For a mention in a "
          "clinical or scientific text you compare the concept the system predicted with the "
          "reference concept chosen by annotators, and you answer with one label in JSON.")

USER = """Text: {context}
Mention: "{mention}" (type {type})

Reference concept:
{gold}

Predicted concept:
{pred}

Labels:
EXACT - the predicted concept fits the mention as well as the reference does (a synonym, or an equally valid reading of the mention).
BROAD - the predicted concept is right but more general: it leaves out a detail the mention states (site, subtype, cause, severity).
NARROW - the predicted concept is more specific than the mention: it adds a detail the text does not support.
WRONG - the predicted concept is another clinical entity, or its relation to the mention is only loose.

Answer with JSON only: {{"label": "<EXACT, BROAD, NARROW or WRONG>"}}."""

VERDICT_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": list(LABELS)}},
    "required": ["label"],
    "additionalProperties": False,
}


# ----------------------------------------------------------------------------- items


@dataclass(frozen=True)
class JudgeItem:
    """One mention with a wrong prediction, as the judge sees it."""

    key: str
    doc_id: str
    start: int
    end: int
    label: str
    mention: str
    context: str
    gold_code: str
    pred_code: str
    gold_names: Tuple[Tuple[str, Tuple[str, ...]], ...]
    pred_names: Tuple[Tuple[str, Tuple[str, ...]], ...]

    @property
    def messages(self) -> List[Dict[str, str]]:
        """The chat messages of the question (system, user)."""
        user = USER.format(context=self.context, mention=self.mention, type=self.label or "-",
                           gold=_concept_text(self.gold_names),
                           pred=_concept_text(self.pred_names))
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]

    def record(self, verdict: str, source: str, raw: Optional[str] = None,
               model: Optional[str] = None) -> Dict[str, Any]:
        """The output line for this mention."""
        rec: Dict[str, Any] = {
            "key": self.key, "doc_id": self.doc_id, "start": self.start, "end": self.end,
            "label": self.label, "mention": self.mention, "verdict": verdict, "source": source,
            "gold_code": self.gold_code, "pred_code": self.pred_code,
            "gold_names": [list(n) for _, n in self.gold_names],
            "pred_names": [list(n) for _, n in self.pred_names],
        }
        if source == "llm":
            rec.update({"raw": raw, "model": model, "prompt": PROMPT_VERSION})
        return rec


def _concept_text(concepts: Sequence[Tuple[str, Sequence[str]]]) -> str:
    return "\n".join(f"- {code}: " + "; ".join(names) for code, names in concepts)


def mention_key(doc_id: str, start: int, end: int, label: str) -> str:
    return f"{doc_id}|{start}|{end}|{label}"


def _names(kb: "ConceptKB", code: str) -> Tuple[Tuple[str, Tuple[str, ...]], ...]:
    """``(code, its first KB names, preferred name first)`` per part of a (composite) code;
    a part with no name in the KB gets none."""
    out = []
    for part in sorted(code_set(code, kb)):
        names: List[str] = []
        if part in kb:
            names = [kb.preferred_name(part)] + kb.names_of(part) + kb.synonyms_of(part)
        out.append((part, tuple(dict.fromkeys(names))[:MAX_NAMES]))
    return tuple(out)


def _context(doc: "CorpusDoc", start: int, end: int, label: str, window: int) -> str:
    sentence = None
    for lo, hi in doc.sentences or ():
        if lo <= start and end <= hi:
            sentence = (lo, hi)
            break
    lo, hi = context_bounds(doc.text, start, end, sentence, window)
    marked, _ = mark_mention(doc.text, start, end, label or "-", lo, hi)
    return marked


def build_items(gold_docs: Sequence["CorpusDoc"], predictions: Sequence["Prediction"],
                kb: "ConceptKB", *, context_chars: int = 300, gold_source: str = "",
                pred_source: str = "") -> Tuple[List[JudgeItem], List[Dict[str, Any]], int]:
    """The mentions to ask the judge about, the records of those decided without asking
    (CORRECT, or WRONG by rule), and the number of gold mentions left out (NO_CODE, outside
    the KB)."""
    items: List[JudgeItem] = []
    decided: List[Dict[str, Any]] = []
    excluded = 0
    for doc, m, p in pair_predictions(gold_docs, predictions, gold_source=gold_source,
                                      pred_source=pred_source):
        if not is_linkable(m.code):
            continue
        if exclusion(str(m.code), kb) is not None:
            excluded += 1
            continue
        pred_code = p.codes[0] if p is not None and p.codes else ""
        item = JudgeItem(
            key=mention_key(doc.id, m.start, m.end, m.label), doc_id=doc.id, start=m.start,
            end=m.end, label=m.label, mention=doc.text[m.start:m.end],
            context=_context(doc, m.start, m.end, m.label, context_chars),
            gold_code=str(m.code), pred_code=pred_code, gold_names=_names(kb, str(m.code)),
            pred_names=_names(kb, pred_code) if pred_code else ())
        if pred_code and code_set(pred_code, kb) == code_set(str(m.code), kb):
            decided.append(item.record(CORRECT, "rule"))
        elif not pred_code or not all(names for _, names in item.pred_names):
            decided.append(item.record("WRONG", "rule"))
        else:
            items.append(item)
    return items, decided, excluded


# ----------------------------------------------------------------------------- answers


def parse_verdict(raw: Optional[str]) -> Optional[str]:
    """The label of a judge's answer: the ``label`` of a JSON object, else the one label word
    the text holds (``NO_RELATION`` and the like count as ``WRONG``); None when there is no
    label, or several different ones."""
    if not raw:
        return None
    text = raw.strip()
    brace = text.find("{")
    if brace >= 0:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[brace:])
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("label"), str):
            return _ALIASES.get(obj["label"].strip().upper().replace(" ", "_").replace("-", "_"))
    found = {_ALIASES[w.upper()] for w in _WORD.findall(text) if w.upper() in _ALIASES}
    return found.pop() if len(found) == 1 else None


# ----------------------------------------------------------------------------- output


class JudgeWriter:
    """Append-only JSONL writer; :meth:`open` returns the last record of each mention."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._f = None
        self.records: Dict[str, Dict[str, Any]] = {}

    def open(self) -> Dict[str, Dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a+b")
        if fcntl is not None:
            try:
                fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._f.close()
                self._f = None
                raise RuntimeError(Errors.E381.format(path=self.path)) from None
        self._f.seek(0)
        data = self._f.read()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            warnings.warn(Warnings.W380.format(path=self.path, n_bytes=len(data) - cut),
                          stacklevel=2)
            self._f.truncate(cut)
            self._f.flush()
            os.fsync(self._f.fileno())
        self._f.seek(0, os.SEEK_END)
        return read_records(self.path, data[:cut])

    def write(self, record: Dict[str, Any]) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False).encode("utf8") + b"\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()  # releases the lock
        self._f = None

    def __enter__(self) -> "JudgeWriter":
        self.records = self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_records(path: PathLike, data: Optional[bytes] = None) -> Dict[str, Dict[str, Any]]:
    """The last complete record of each mention in a judge output (E382 on a bad line)."""
    path = Path(path)
    if data is None:
        data = path.read_bytes() if path.exists() else b""
    out: Dict[str, Dict[str, Any]] = {}
    for i, line in enumerate(data.split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            rec = json_loads(line)
        except ValueError as err:
            raise ValueError(Errors.E382.format(path=path, line=i,
                                                problem=f"invalid JSON ({err})")) from None
        if not isinstance(rec, dict) or not isinstance(rec.get("key"), str) \
                or rec.get("verdict") not in VERDICTS + (INVALID,):
            raise ValueError(Errors.E382.format(path=path, line=i,
                                                problem="not a judge record (key, verdict)"))
        out[rec["key"]] = rec
    return out


# ----------------------------------------------------------------------------- table


@dataclass
class JudgeTable:
    """Verdict counts overall and per label."""

    rows: Dict[str, Counter] = field(default_factory=dict)

    def add(self, label: str, verdict: str) -> None:
        for row in ("all", label or "-"):
            self.rows.setdefault(row, Counter())[verdict] += 1

    def to_dict(self) -> Dict[str, Dict[str, Any]]:
        out = {}
        for row, c in self.rows.items():
            n = sum(c.values())
            judged = sum(c[v] for v in LABELS)
            entry: Dict[str, Any] = {"n": n, CORRECT: c[CORRECT], **{v: c[v] for v in LABELS},
                                     INVALID: c[INVALID], "pending": c["pending"],
                                     "judged": judged}
            entry["recall@1"] = c[CORRECT] / n if n else 0.0
            entry["recall@1+EXACT"] = (c[CORRECT] + c["EXACT"]) / n if n else 0.0
            entry["recall@1+EXACT+BROAD+NARROW"] = (
                (c[CORRECT] + c["EXACT"] + c["BROAD"] + c["NARROW"]) / n if n else 0.0)
            for v in LABELS:
                entry[f"{v}_share_of_judged"] = c[v] / judged if judged else 0.0
            out[row] = entry
        return out

    def render(self) -> str:
        cols = ["n", CORRECT, "EXACT", "BROAD", "NARROW", "WRONG", INVALID, "pending"]
        table = self.to_dict()
        order = ["all"] + sorted(r for r in table if r != "all")
        width = max([len(r) for r in order] + [5])
        lines = [" " * width + "".join(f"{c:>9}" for c in cols)
                 + "   R@1  +EXACT  +B+N"]
        for r in order:
            e = table[r]
            lines.append(f"{r:<{width}}" + "".join(f"{e[c]:>9}" for c in cols)
                         + f" {100 * e['recall@1']:5.1f}  {100 * e['recall@1+EXACT']:5.1f}"
                         + f"  {100 * e['recall@1+EXACT+BROAD+NARROW']:5.1f}")
        judged = table.get("all", {}).get("judged", 0)
        if judged:
            shares = ", ".join(f"{v} {100 * table['all'][f'{v}_share_of_judged']:.1f}%"
                               for v in LABELS)
            lines.append(f"judged wrong predictions: {judged} ({shares})")
        return "\n".join(lines)


def tabulate(items: Sequence[JudgeItem], decided: Sequence[Dict[str, Any]],
             records: Dict[str, Dict[str, Any]]) -> JudgeTable:
    """Verdicts of the current mentions (a mention not yet judged counts as ``pending``)."""
    table = JudgeTable()
    for rec in decided:
        table.add(rec["label"], rec["verdict"])
    for item in items:
        rec = records.get(item.key)
        table.add(item.label, rec["verdict"] if rec is not None else "pending")
    return table


# ----------------------------------------------------------------------------- running


@dataclass
class JudgeRun:
    """What a run did, and the table of the whole output."""

    table: JudgeTable
    asked: int = 0
    invalid: int = 0
    skipped: int = 0
    excluded: int = 0
    seconds: float = 0.0
    model: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return {"asked": self.asked, "invalid": self.invalid, "skipped_done": self.skipped,
                "excluded": self.excluded, "seconds": round(self.seconds, 2),
                "model": self.model, "prompt": PROMPT_VERSION, "table": self.table.to_dict()}


def run_judge(items: Sequence[JudgeItem], decided: Sequence[Dict[str, Any]], output: PathLike,
              judge, *, limit: Optional[int] = None, excluded: int = 0,
              progress: bool = False) -> JudgeRun:
    """Ask ``judge`` (a backend with ``stream(items)`` yielding ``(item, raw answer)``) about
    the mentions ``output`` does not hold yet (of the first ``limit`` wrong predictions),
    writing each answer as it arrives. The table counts every mention (those beyond ``limit``
    as ``pending``)."""
    import time

    start = time.perf_counter()
    every = list(items)
    items = every[:limit] if limit else every
    invalid: List[str] = []
    with JudgeWriter(output) as writer:
        records = writer.records
        for rec in decided:
            if rec["key"] not in records:
                writer.write(rec)
                records[rec["key"]] = rec
        todo = [it for it in items if records.get(it.key, {}).get("verdict") in (None, INVALID)]
        skipped = len(items) - len(todo)
        asked = 0
        model = str(getattr(judge, "model_name", "") or "")
        stream: Iterable[Tuple[JudgeItem, str]] = judge.stream(todo)
        if progress:
            from tqdm import tqdm

            stream = tqdm(stream, total=len(todo), desc="judge", unit="mention")
        try:
            for item, raw in stream:
                asked += 1
                verdict = parse_verdict(raw)
                if verdict is None:
                    invalid.append(raw)
                rec = item.record(verdict or INVALID, "llm", raw=raw, model=model)
                writer.write(rec)
                records[item.key] = rec
        except RuntimeError as err:  # the server failed for good (E074, E075)
            raise RuntimeError(Errors.E386.format(asked=asked, err=err, path=output)) from err
    if invalid:
        warnings.warn(Warnings.W381.format(n=len(invalid), first=(invalid[0] or "")[:80]),
                      stacklevel=2)
    return JudgeRun(tabulate(every, decided, records), asked=asked, invalid=len(invalid),
                    skipped=skipped, excluded=excluded, seconds=time.perf_counter() - start,
                    model=model)


def summary_path(output: PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".summary.json")


def judge_files(gold: PathLike, predictions: PathLike, kb: PathLike, output: PathLike, judge, *,
                limit: Optional[int] = None, context_chars: int = 300, format: str = "auto",
                summary: Optional[PathLike] = None, progress: bool = False) -> JudgeRun:
    """Read the gold corpus, the predictions and the KB, judge the wrong predictions into
    ``output`` and save the summary (default ``OUTPUT.summary.json``)."""
    import srsly

    from ..corpus import read_corpus
    items, decided, excluded = build_items(
        read_corpus(gold), read_predictions(predictions, format=format), load_kb(kb),
        context_chars=context_chars, gold_source=str(gold), pred_source=str(predictions))
    result = run_judge(items, decided, output, judge, limit=limit, excluded=excluded,
                       progress=progress)
    target = Path(summary) if summary is not None else summary_path(output)
    srsly.write_json(target, {**result.to_dict(), "gold": str(gold),
                              "predictions": str(predictions), "kb": str(kb),
                              "output": str(output), "limit": limit})
    return result
