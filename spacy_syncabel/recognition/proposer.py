"""``syncabel_dictionary_proposer``: adds the dictionary's phrases the NER missed to ``doc.ents``.

Placed after the NER and before the linker. Every match of its :class:`~.dictionary.
PhraseDictionary` (KB names and training mentions, filtered by their precision on the training
texts) that overlaps no entity already in ``doc.ents`` becomes an entity with the dictionary's
label; the NER's entities are never changed. With ``spans_key`` the matches (overlapping the
NER's or not) are also written to ``doc.spans[spans_key]``, for a linker that reads a span group.

The dictionary is built in :meth:`DictionaryProposer.initialize` (or given with
:meth:`~DictionaryProposer.set_dictionary`) and saved as ``dictionary.json``; never pickled.
"""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import filter_spans

from ..errors import Errors
from ..textio import read_json
from ..types import CorpusDoc, GoldMention
from .dictionary import PhraseDictionary, build_dictionary

FACTORY = "syncabel_dictionary_proposer"
FILE = "dictionary.json"
DEFAULT_CONFIG: Dict[str, Any] = {"min_precision": 0.5, "min_count": 1, "keep_unseen": False,
                                  "min_chars": 3, "spans_key": None}


@Language.factory(FACTORY, assigns=["doc.ents"], default_config=DEFAULT_CONFIG)
def make_dictionary_proposer(nlp: Language, name: str, min_precision: float, min_count: int,
                             keep_unseen: bool, min_chars: int,
                             spans_key: Optional[str]) -> "DictionaryProposer":
    return DictionaryProposer(nlp, name, min_precision=min_precision, min_count=min_count,
                              keep_unseen=keep_unseen, min_chars=min_chars,
                              spans_key=spans_key)


def corpus_from_examples(examples: Iterable[Example]) -> List[CorpusDoc]:
    """Gold texts and entities of spaCy examples as corpus documents (every label annotated)."""
    return [CorpusDoc(id=str(i), text=eg.reference.text,
                      mentions=[GoldMention(e.start_char, e.end_char, e.label_)
                                for e in eg.reference.ents])
            for i, eg in enumerate(examples)]


class DictionaryProposer(Pipe):
    """Adds dictionary matches that overlap no entity to ``doc.ents``."""

    def __init__(self, nlp: Language, name: str = FACTORY, *, min_precision: float = 0.5,
                 min_count: int = 1, keep_unseen: bool = False, min_chars: int = 3,
                 spans_key: Optional[str] = None) -> None:
        self.name = name
        self.vocab = nlp.vocab
        self._tokenize: Callable[[str], Doc] = nlp.make_doc
        self.min_precision, self.min_count = float(min_precision), int(min_count)
        self.keep_unseen, self.min_chars = bool(keep_unseen), int(min_chars)
        self.spans_key = spans_key
        self.dictionary: Optional[PhraseDictionary] = None

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(sorted(set(self.dictionary.entries.values()))) if self.dictionary else ()

    def set_dictionary(self, dictionary: PhraseDictionary) -> None:
        self.dictionary = dictionary

    def build(self, corpus: Sequence[CorpusDoc], names: Iterable[Tuple[str, str]] = (),
              labels: Optional[Iterable[str]] = None) -> PhraseDictionary:
        """Build the dictionary from a training corpus and ``(name, label)`` pairs with this
        component's settings, and use it."""
        self.dictionary = build_dictionary(
            self._tokenize, corpus, names, min_precision=self.min_precision,
            min_count=self.min_count, keep_unseen=self.keep_unseen,
            min_chars=self.min_chars, labels=labels)
        return self.dictionary

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *,
                   nlp: Optional[Language] = None,
                   names: Optional[Sequence[Tuple[str, str]]] = None) -> None:
        """Build the dictionary from the training examples' gold entities (their texts give
        the precision filter) and ``names``: ``[name, label]`` pairs such as KB names."""
        self.build(corpus_from_examples(get_examples()), names or ())

    def proposals(self, doc: Doc) -> List[Span]:
        """Every dictionary match in ``doc`` as a span (they may overlap ``doc.ents``)."""
        if self.dictionary is None:
            raise ValueError(Errors.E540.format(name=self.name))
        return [Span(doc, i, j, label=label) for i, j, label in self.dictionary.find(
            [t.text for t in doc])]

    def __call__(self, doc: Doc) -> Doc:
        found = self.proposals(doc)
        if self.spans_key is not None:
            doc.spans[self.spans_key] = found
        taken = [False] * len(doc)
        for ent in doc.ents:
            for k in range(ent.start, ent.end):
                taken[k] = True
        new = [s for s in found if not any(taken[s.start:s.end])]
        if new:
            doc.ents = filter_spans(list(doc.ents) + new)
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128):
        for doc in stream:
            yield self(doc)

    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.dictionary is None:
            raise ValueError(Errors.E540.format(name=self.name))
        import json

        with open(path / FILE, "w", encoding="utf-8") as f:
            json.dump(self.dictionary.to_dict(), f, ensure_ascii=False)

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        if self.dictionary is None:
            raise ValueError(Errors.E540.format(name=self.name))
        import json

        return json.dumps(self.dictionary.to_dict(), ensure_ascii=False).encode("utf8")

    def from_bytes(self, bytes_data: bytes, *,
                   exclude: Iterable[str] = tuple()) -> "DictionaryProposer":
        from ..textio import json_loads

        self.dictionary = PhraseDictionary.from_dict(json_loads(bytes_data.decode("utf8")))
        return self

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "DictionaryProposer":
        path = Path(path)
        if not (path / FILE).is_file():
            raise ValueError(Errors.E541.format(path=path / FILE, name=self.name))
        self.dictionary = PhraseDictionary.from_dict(read_json(path / FILE, root=path,
                                                               kind="kb"))
        return self





def kb_name_labels(kb, label_map: Dict[str, Optional[str]],
                   labels: Iterable[str]) -> List[Tuple[str, str]]:
    """``(name, label)`` of every KB name whose group is one of ``labels`` or the group a
    label of ``labels`` maps to (``label_map``: NER label -> KB group, the linker's)."""
    by_group: Dict[str, str] = {}
    for label in labels:
        by_group.setdefault(label_map.get(label) or label, label)
    return [(name, by_group[group]) for _, name, group in kb.entries() if group in by_group]


def add_dictionary_proposer(nlp: Language, corpus: Sequence[CorpusDoc], *, kb=None,
                            label_map: Optional[Dict[str, Optional[str]]] = None,
                            labels: Optional[Sequence[str]] = None,
                            before: Optional[str] = None, name: str = FACTORY,
                            **config: Any) -> DictionaryProposer:
    """Add a dictionary proposer to ``nlp`` (before the component ``before``, else last),
    built from the training ``corpus`` and, with ``kb``, the KB names of the ``labels`` (the
    NER's) through ``label_map``. ``config``: the factory's settings."""
    corpus = [CorpusDoc(d.id, d.text, [m for m in d.mentions
                                       if labels is None or m.label in labels],
                        d.sentences, d.annotated_labels) for d in corpus]
    if labels is None:
        labels = sorted({m.label for d in corpus for m in d.mentions})
    where = {"before": before} if before is not None else {}
    proposer = nlp.add_pipe(FACTORY, name=name, config=config, **where)
    names = kb_name_labels(kb, label_map or {}, labels) if kb is not None else []
    proposer.build(corpus, names, labels=labels)
    return proposer
__all__ = ["DictionaryProposer", "make_dictionary_proposer", "corpus_from_examples",
           "add_dictionary_proposer", "kb_name_labels", "FACTORY"]
