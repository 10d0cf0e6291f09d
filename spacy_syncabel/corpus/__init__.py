"""Corpus readers and writers: JSONL, brat, PubTator, marked-sentence TSV, SPACCC, DocBin."""
from .brat import read_brat
from .docbin import read_docbin
from .jsonl import read_jsonl, write_jsonl
from .marked_tsv import read_marked_tsv, unmark
from .pubtator import read_pubtator
from .reader import READERS, detect_format, read_corpus
from .spaccc import read_spaccc
from .spacy_docs import docs_to_examples, docs_to_spacy, set_sentences
from ._util import normalize_code

__all__ = [
    "read_corpus", "detect_format", "READERS",
    "read_jsonl", "write_jsonl", "read_brat", "read_pubtator", "read_marked_tsv",
    "read_spaccc", "read_docbin", "docs_to_spacy", "docs_to_examples", "set_sentences",
    "normalize_code", "unmark",
]
