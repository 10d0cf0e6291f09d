"""Plain data types shared across modules."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

NIL = "NIL"
NO_CODE = "NO_CODE"
COMPOSITE_SEP = "+"
#: what ranked a mention's n-best (``Candidate.path``): the LM (``score``: exp of the
#: length-normalised log-prob), the cascade's dictionary (an exact match) or its retriever
#: (``score``: the retrieval score)
PATH_LM = "lm"
PATH_DICTIONARY = "dictionary"
PATH_RETRIEVER = "retriever"
PATHS = (PATH_LM, PATH_DICTIONARY, PATH_RETRIEVER)


@dataclass(frozen=True)
class GoldMention:
    """An annotated mention: character offsets into its document's text."""

    start: int
    end: int
    label: str
    code: Optional[str] = None  # composite codes joined by "+"


@dataclass
class CorpusDoc:
    """One document of a corpus: its text and gold mentions.

    ``sentences`` optionally holds (start, end) character spans of sentences.
    ``annotated_labels`` names the labels the document was annotated for, when a corpus joins
    annotation layers that not every document has (SPACCC: its disease, symptom and procedure
    layers come from three shared tasks); ``None``: annotated for every label of the corpus.
    A label outside it is unknown in the document, neither present nor absent.
    """

    id: str
    text: str
    mentions: List[GoldMention] = field(default_factory=list)
    sentences: Optional[List[tuple]] = None
    annotated_labels: Optional[List[str]] = None

    def is_annotated(self, label: str) -> bool:
        """Whether the document was annotated for mentions of ``label``."""
        return self.annotated_labels is None or label in self.annotated_labels


@dataclass(frozen=True)
class Candidate:
    """One n-best entry of the linker for a mention."""

    name: str
    code: str
    score: float  # exp(mean token log-prob)
    logprob: float  # summed log-prob of the beam
    similarity: Optional[float] = None  # TF-IDF cosine mention/name, when a prior is used
    path: Optional[str] = None  # what ranked the n-best: PATH_LM, PATH_DICTIONARY, PATH_RETRIEVER

    def to_dict(self) -> dict:
        out = {"name": self.name, "code": self.code, "score": self.score, "logprob": self.logprob}
        if self.similarity is not None:
            out["similarity"] = self.similarity
        if self.path is not None:
            out["path"] = self.path
        return out
