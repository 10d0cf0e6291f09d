"""Text cleaning shared by KB names, mentions and prompts."""
from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")
_BRACKETS = str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")"})


def normalize_space(text: str) -> str:
    """Collapse every run of white space (any unicode space) into one blank and strip."""
    return _WS.sub(" ", text).strip()


def clean_name(text: str) -> str:
    """Clean a KB name or a mention for use inside a prompt.

    NFC-normalises, removes control characters, collapses white space and turns
    ``[]{}`` into ``()`` so that the ``[mention]{TYPE}`` markup stays unambiguous.
    """
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return normalize_space(text.translate(_BRACKETS))
