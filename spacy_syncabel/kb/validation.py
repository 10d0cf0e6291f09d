"""What a KB code and a KB name may hold.

A code travels through gold files, brat notes, JSONL outputs and scoring, where ``+`` joins the
parts of a composite code, the corpus readers split gold codes on ``+``, ``|``, ``,`` and white
space and read ``NIL`` / ``-1`` / ``CUI-less`` as "no concept", ``NO_CODE`` marks an unlinkable
mention and ``<SEP>`` separates the names of a composite answer. A KB code is valid when it reads
back as itself, one code, through all of these: printable, no separator, not a marker.

A name must keep something to generate once cleaned: at least one letter, digit, symbol or
punctuation mark (not only white space, invisible characters or combining marks), and no
``<SEP>`` (the decoder would split it into a composite answer).
"""
from __future__ import annotations

import re
import unicodedata
from typing import Optional

from ..corpus._util import NIL_CODES, normalize_code
from ..prompting import SEP_TOKEN
from ..types import COMPOSITE_SEP, NIL, NO_CODE

__all__ = ["code_problem", "repair_code", "name_problem"]

_MARKERS = (NIL, NO_CODE)
_END_JUNK = " +|,"
# the common case, checked at once: no white space, separator or '<', not a marker
_PLAIN = re.compile(r"[^\s+|,<]+")
_NO_CONCEPT = {NIL.lower(), NO_CODE.lower(), *NIL_CODES}


def _char(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, unicodedata.category(ch))}"


def code_problem(code: str) -> Optional[str]:
    """Why ``code`` cannot be a KB code (a phrase completing "code 'X' ..."), or None."""
    if code.isprintable() and _PLAIN.fullmatch(code) and code.lower() not in _NO_CONCEPT:
        return None
    if not code:
        return "is empty"
    bad = next((ch for ch in code if not ch.isprintable()), None)
    if bad is not None:
        return (f"holds the invisible or control character {_char(bad)}, which breaks brat "
                "and TSV lines")
    if SEP_TOKEN in code:
        return f"holds '{SEP_TOKEN}', the separator of the names of a composite answer"
    if code.upper() in _MARKERS or normalize_code(code) == NIL:
        return "is a marker the corpus readers and outputs use for 'no concept' / 'no code'"
    if normalize_code(code) != code or COMPOSITE_SEP in code:
        sep = next((ch for ch in code if ch in "+|," or ch.isspace()), "")
        return (f"holds {sep!r}, which the gold-code readers take as the separator of a "
                "composite code (a+b)")
    return None


def repair_code(code: str) -> str:
    """``code`` without white space and stray composite separators at its ends (``C1+`` ->
    ``C1``, as the gold readers read it); what is inside is left for :func:`code_problem`."""
    return code.strip().strip(_END_JUNK).strip()


def name_problem(cleaned: str) -> Optional[str]:
    """Why a cleaned name cannot be a KB name (completing "name 'X' ..."), or None."""
    if cleaned[:1].isalnum() and SEP_TOKEN not in cleaned:
        return None
    if not any(unicodedata.category(ch)[0] in "LNSP" for ch in cleaned):
        return ("has no letter, digit, symbol or punctuation once cleaned (only white space, "
                "invisible characters or combining marks)")
    if SEP_TOKEN in cleaned:
        return (f"holds '{SEP_TOKEN}', which the decoder reads as the separator of a composite "
                "answer")
    return None
