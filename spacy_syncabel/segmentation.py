"""``syncabel_sentencizer``: rule-based sentence boundaries the SynCABEL way.

SynCABEL renders a mention in the sentence that holds it. Its sentences come from splitting a
note on line breaks first, then running a Punkt splitter on each line. This component gives the
same sentences without a trained model:

* every line break ends a sentence (blank lines are skipped);
* inside a line, a sentence ends after ``.``, ``!``, ``?`` (and any closing quotes or
  brackets) followed by white space, except
  - before a word that starts in lower case ("1000 mg i.v. y después"),
  - after a known abbreviation ("Dr.", "Sra.", "aprox.", "Fig."),
  - after a single letter, an initial ("C. albicans", "vitamina D. Tras"),
  - after a run of periods ("en trámite.. Se");
* inner periods ("3.5", "i.v.") never end a sentence, since no white space follows them;
* no sentence starts inside an entity of ``doc.ents`` (put the component after the NER to
  protect its entities).

:func:`sentence_starts` works on plain text; the component maps its offsets onto tokens.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from typing import Any, Dict, FrozenSet, Iterable, List, Optional

from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from .errors import Errors
# an assembled pipeline places the proposer after this segmenter: registered before it is made
from .recognition import proposer as _proposer  # noqa: F401,E402

# Abbreviations (lower case, without the final period) that do not end a sentence even
# before a capitalised word: titles, references and Latin forms of Spanish, French and
# English clinical writing. Units ("mg.", "cm.", "min.") and "etc." are left out on purpose:
# before a capital they end a sentence far more often than not.
DEFAULT_ABBREVIATIONS: FrozenSet[str] = frozenset("""
dr dra drs dras sr sra sres sras srta prof profa lic ing mr mrs ms mme mlle st sto sta
fig figs tab tabl vol vols pág págs pag pags núm nº n.º art cap ref refs ed eds
aprox approx cf ej p.ej e.g i.e et al cols apdo avda dpto depto hosp serv ee.uu
""".split())

_BREAK = re.compile(
    r"(?P<punct>[.!?]+|…)"           # terminal punctuation
    r"(?P<close>[\"'»”’)\]]*)"        # closing quotes / brackets stay with the sentence
    r"(?P<space>[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+)"  # white space inside a line
    r"(?=(?P<next>\S))")
_LINE = re.compile(r"[^\n\r\u2028\u2029\x0b\x0c\x1c-\x1e\x85]+")
_OPENERS = "\"'«“‘([¿¡"


def _word_before(text: str, end: int, line_start: int) -> str:
    """The white-space delimited word ending at ``end`` (opening punctuation stripped)."""
    i = end
    while i > line_start and not text[i - 1].isspace():
        i -= 1
    return text[i:end].lstrip(_OPENERS)


def _is_break(text: str, m: "re.Match[str]", line_start: int,
              abbreviations: FrozenSet[str]) -> bool:
    nxt = m.group("next")
    if nxt.islower():
        return False
    punct = m.group("punct")
    if "!" in punct or "?" in punct:
        return True
    if len(punct) > 1 or punct == "…":  # "trámite.. Se", "..."
        return False
    word = _word_before(text, m.start(), line_start).lower()
    if not word:
        return True
    if word in abbreviations or word.rstrip(".") in abbreviations:
        return False
    if len(word) == 1 and word.isalpha():  # an initial
        return False
    return True


def sentence_starts(text: str, abbreviations: Optional[Iterable[str]] = None) -> List[int]:
    """Character offsets where a sentence starts, in order; the first is the first
    non-space character of ``text`` (none for an empty or blank text)."""
    abbrevs = (DEFAULT_ABBREVIATIONS if abbreviations is None
               else frozenset(a.lower().rstrip(".") for a in abbreviations))
    starts: List[int] = []
    for line in _LINE.finditer(text):
        lo, hi = line.span()
        first = lo + (len(line.group()) - len(line.group().lstrip()))
        if first >= hi:
            continue
        starts.append(first)
        for m in _BREAK.finditer(text, first, hi):
            if _is_break(text, m, first, abbrevs):
                starts.append(m.end())
    return starts


class SyncabelSentencizer:
    """Sets ``token.is_sent_start`` from :func:`sentence_starts`."""

    def __init__(self, name: str = "syncabel_sentencizer", *,
                 abbreviations: Optional[Iterable[str]] = None,
                 extra_abbreviations: Iterable[str] = (), overwrite: bool = True) -> None:
        base = DEFAULT_ABBREVIATIONS if abbreviations is None else abbreviations
        for a in list(base) + list(extra_abbreviations):
            if not isinstance(a, str) or not a.strip(". ") or any(c.isspace() for c in a):
                raise ValueError(Errors.E180.format(value=a))
        self.name = name
        self.abbreviations = frozenset(a.lower().rstrip(".") for a in
                                       list(base) + list(extra_abbreviations))
        self.overwrite = overwrite

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            return doc
        if not self.overwrite and doc.has_annotation("SENT_START"):
            return doc
        idx = [t.idx for t in doc]
        starts = {0}
        for off in sentence_starts(doc.text, self.abbreviations):
            i = bisect_left(idx, off)
            if i < len(doc):
                starts.add(i)
        for ent in doc.ents:  # never start a sentence inside an entity
            starts.difference_update(range(ent.start + 1, ent.end))
        for tok in doc:
            tok.is_sent_start = tok.i in starts
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int = 128) -> Iterable[Doc]:
        for doc in stream:
            yield self(doc)

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """Sentence boundary precision, recall and F (``sents_p``, ``sents_r``, ``sents_f``)."""
        return Scorer.score_spans(examples, "sents", **kwargs)

    # nothing is learned: (de)serialization is the config alone
    def to_bytes(self, *, exclude=()) -> bytes:  # noqa: D102
        return b""

    def from_bytes(self, data: bytes, *, exclude=()) -> "SyncabelSentencizer":  # noqa: D102
        return self

    def to_disk(self, path, *, exclude=()) -> None:  # noqa: D102
        return None

    def from_disk(self, path, *, exclude=()) -> "SyncabelSentencizer":  # noqa: D102
        return self


@Language.factory(
    "syncabel_sentencizer",
    assigns=["token.is_sent_start", "doc.sents"],
    default_config={"abbreviations": None, "extra_abbreviations": [], "overwrite": True},
    default_score_weights={"sents_f": 1.0, "sents_p": 0.0, "sents_r": 0.0},
)
def make_sentencizer(nlp: Language, name: str, abbreviations: Optional[List[str]],
                     extra_abbreviations: List[str], overwrite: bool) -> SyncabelSentencizer:
    """Rule-based sentence boundaries: line breaks, then ``.!?`` before a capital, a digit
    or a symbol, except after abbreviations, initials and runs of periods."""
    return SyncabelSentencizer(name, abbreviations=abbreviations,
                               extra_abbreviations=extra_abbreviations,
                               overwrite=overwrite)
