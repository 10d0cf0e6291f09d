"""Languages of the multilingual formats: UMLS ``LAT`` codes and ISO 639-1 codes, both ways."""
from __future__ import annotations

from typing import Iterable, List, Optional

_ISO_TO_UMLS = {
    "en": "ENG", "es": "SPA", "fr": "FRE", "de": "GER", "it": "ITA", "pt": "POR", "nl": "DUT",
    "sv": "SWE", "da": "DAN", "no": "NOR", "nb": "NOR", "fi": "FIN", "cs": "CZE", "pl": "POL",
    "hu": "HUN", "ru": "RUS", "ja": "JPN", "zh": "CHI", "ko": "KOR", "el": "GRE", "he": "HEB",
    "ar": "ARA", "tr": "TUR", "et": "EST", "lv": "LAV", "hr": "HRV", "eu": "BAQ", "uk": "UKR",
}
_UMLS_TO_ISO = {v: k for k, v in _ISO_TO_UMLS.items() if k != "nb"}
_ALL_LANGUAGES = {"all", "*"}


def _language_list(languages: Optional[Iterable[str]]) -> Optional[List[str]]:
    """The languages asked for, stripped, in order; None for no filter (None, empty, or
    ``all``/``*`` among them)."""
    if languages is None or isinstance(languages, str):
        languages = [languages] if isinstance(languages, str) else []
    out = [str(x).strip() for x in languages if str(x).strip()]
    if not out or any(x.lower() in _ALL_LANGUAGES for x in out):
        return None
    return out


def umls_languages(languages: Optional[Iterable[str]]) -> Optional[List[str]]:
    """UMLS ``LAT`` codes (``ENG``, ``SPA``, ``FRE``...) for languages given as LAT codes or
    ISO 639-1 codes (``es`` -> ``SPA``), any case; None: every language."""
    langs = _language_list(languages)
    if langs is None:
        return None
    return [_ISO_TO_UMLS.get(x.lower(), x.upper()) for x in langs]


def iso_languages(languages: Optional[Iterable[str]]) -> Optional[List[str]]:
    """ISO 639-1 codes (SNOMED CT ``languageCode``: ``en``, ``es``...) for languages given as
    ISO codes or UMLS ``LAT`` codes (``SPA`` -> ``es``), any case; None: every language."""
    langs = _language_list(languages)
    if langs is None:
        return None
    return [_UMLS_TO_ISO.get(x.upper(), x.lower()) for x in langs]
