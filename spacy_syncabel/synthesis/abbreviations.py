"""Is a mention an acronym or abbreviation of a KB name? (Spanish, French, English.)

Clinicians write "HTA" for *hipertensión arterial*, "EPOC" for *enfermedad pulmonar
obstructiva crónica*, "IRM" for *imagerie par résonance magnétique*, "DM2" for *diabetes
mellitus tipo 2*, "insuf. cardiaca" for *insuficiencia cardiaca*. None of them shares a word stem
with the name, so the synthesis filters need this test to accept them.

An acronym (one token, at least two capitals; dots allowed: "I.A.M.") matches a name when its
letters can be read off the name's words in order:

* each content word gives its initial, and may give up to two more letters from inside it
  ("HTA": *H*iper*T*ensión *A*rterial; "EEG": *E*lectro*E*ncefalo*G*rama);
* a function word ("de", "of", "par"...) gives its initial or nothing ("IAM": *I*nfarto
  *A*gudo de *M*iocardio; "VIH"), and so do the generic words that open a terminology name
  ("PIO": *prueba de* *P*resión *I*ntra*O*cular);
* a digit matches a number of the name ("DM2");
* the first content word is always used, and a name of four or more content words may leave
  one out ("DM2" leaves out *tipo*); a one-word name needs a three-letter acronym ("EEG").

A longer mention is related when one of its capitalised tokens is an acronym of two or more
consecutive words of a name ("EPOC reagudizada", "DM tipo 2", "IAM inferior"), or one of its
dotted tokens is the start of a name word ("insuf. card.", "enf. de Crohn").
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable, List, Sequence, Tuple

FUNCTION_WORDS = frozenset({
    # es
    "de", "del", "la", "el", "los", "las", "y", "e", "o", "en", "con", "sin", "por", "para",
    "a", "al", "un", "una", "su", "sus",
    # fr
    "du", "des", "le", "les", "et", "ou", "au", "aux", "d", "l", "par", "pour", "sur", "avec",
    "sans", "une",
    # en
    "of", "the", "and", "or", "in", "with", "without", "to", "for", "by", "on", "at", "an",
})
# words that open a terminology name but not the clinician's acronym ("prueba de presión
# intraocular": "PIO")
GENERIC_HEADS = frozenset({
    "procedimiento", "tecnica", "prueba", "metodo", "estudio",
    "procedure", "technique", "test", "method",
    "examen", "methode",
})
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_ACRONYM = re.compile(r"^(?:[^\W\d_]\.?){1}(?:[^\W_]\.?){1,9}$", re.UNICODE)
MAX_INSIDE = 2  # letters a word may give besides its initial


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if not unicodedata.combining(c))


def _words(name: str) -> Tuple[Tuple[str, bool], ...]:
    """``(folded word, may be left out)`` of a name: function words, and the generic words
    that open it (:data:`GENERIC_HEADS`)."""
    words = _TOKEN.findall(_fold(name))
    head = 0
    while head < len(words) - 1 and (words[head] in GENERIC_HEADS
                                     or (head and words[head] in FUNCTION_WORDS)):
        head += 1
    return tuple((w, i < head or w in FUNCTION_WORDS) for i, w in enumerate(words))


def looks_like_acronym(token: str) -> bool:
    """One token of 2-10 letters and digits (dots allowed), at least two capitals and at most
    one small letter: "HTA", "DM2", "I.A.M.", "EPOC", "IgA"."""
    if not _ACRONYM.match(token):
        return False
    letters = [c for c in token if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    return upper >= 2 and len(letters) - upper <= 1


def _inside(word: str, letters: str) -> bool:
    """Whether ``letters`` appear in order inside ``word`` (after its initial)."""
    pos = 1
    for c in letters:
        pos = word.find(c, pos) + 1
        if pos == 0:
            return False
    return True


@lru_cache(maxsize=65536)
def _match(acr: str, words: Tuple[Tuple[str, bool], ...], whole: bool) -> bool:
    """Whether ``acr`` (folded letters and digits) reads off ``words`` by the rules above;
    ``whole``: the name's content words must all be used (but one, in a long name), else the
    acronym may stop before the end (two words at least)."""
    content = sum(1 for _, fn in words if not fn)
    if content == 0:
        return False
    max_skip = 1 if whole and content >= 4 else 0
    if whole and content == 1 and len(acr) < 3:
        return False

    def go(i: int, j: int, skipped: int, used: int, started: bool) -> bool:
        if i == len(acr):
            if not whole:
                return used >= 2
            rest = sum(1 for _, fn in words[j:] if not fn)
            return skipped + rest <= max_skip
        if j == len(words):
            return False
        word, fn = words[j]
        # leave the word out
        if fn and go(i, j + 1, skipped, used, started):
            return True
        if not fn and started and skipped < max_skip and go(i, j + 1, skipped + 1, used, started):
            return True
        # use it: its initial (or the whole number), then up to MAX_INSIDE letters from inside
        if word.isdigit():
            return acr.startswith(word, i) and go(i + len(word), j + 1, skipped, used + 1, True)
        if acr[i] != word[0]:
            return False
        extra_max = 0 if fn else MAX_INSIDE
        for k in range(0, extra_max + 1):
            if i + 1 + k > len(acr):
                break
            if k and not _inside(word, acr[i + 1:i + 1 + k]):
                break
            if go(i + 1 + k, j + 1, skipped, used + 1, True):
                return True
        return False

    return go(0, 0, 0, 0, False)


def is_acronym_of(token: str, name: str) -> bool:
    """Whether ``token`` is an acronym of the whole ``name`` (see the module docstring)."""
    if not looks_like_acronym(token):
        return False
    acr = "".join(_TOKEN.findall(_fold(token)))
    return _match(acr, _words(name), True)


def _acronym_of_part(token: str, words: Sequence[Tuple[str, bool]]) -> bool:
    acr = "".join(_TOKEN.findall(_fold(token)))
    starts = [j for j, (_, fn) in enumerate(words) if not fn]
    return any(_match(acr, tuple(words[j:]), False) for j in starts)


def _dotted_prefix(token: str, words: Sequence[Tuple[str, bool]]) -> bool:
    if not token.endswith(".") or looks_like_acronym(token):
        return False
    stem = _fold(token.rstrip("."))
    return (len(stem) >= 2 and stem.isalpha()
            and any(not fn and len(w) >= len(stem) + 2 and w.startswith(stem)
                    for w, fn in words))


def abbreviates(mention: str, names: Iterable[str]) -> bool:
    """Whether ``mention`` is, or holds, an acronym or abbreviation of one of ``names``."""
    tokens: List[str] = mention.split()
    names = list(names)
    if len(tokens) == 1 and any(is_acronym_of(tokens[0], n) for n in names):
        return True
    for name in names:
        words = _words(name)
        for tok in tokens:
            tok = tok.strip(",;:")
            if looks_like_acronym(tok) and _acronym_of_part(tok, words):
                return True
            if _dotted_prefix(tok, words):
                return True
    return False
