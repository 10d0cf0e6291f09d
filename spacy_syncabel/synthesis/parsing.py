"""Parse and filter generated text into annotated sentences.

A backend's raw output holds one sentence a line, each starting with the prompt's prefix
(``SENTENCE:``) and marking its mention in square brackets. :func:`parse_output` keeps the
first ``n_mentions`` candidate lines, strips the brackets, computes the mention's offsets and
applies the filters of :class:`FilterConfig`, counting every rejection by reason. Every
requested sentence ends up either accepted or under exactly one rejection reason (``missing_line``
when the output has fewer lines than requested), so ``accepted + sum(rejected) == requested``.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from .abbreviations import abbreviates, is_acronym_of

_LIST_MARKER = re.compile(r"^(?:[-*•>]+\s*|\d{1,2}\s*[.):-]\s*|\*\*)+")
_BRACKETED = re.compile(r"\[([^\[\]]*)\]")
_WS = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")

# Rejection reasons, in the order they are checked.
REASONS = (
    "missing_line", "no_prefix", "no_mention", "several_mentions", "empty_mention",
    "mention_too_long", "sentence_too_short", "sentence_too_long", "all_caps", "parentheses",
    "foreign_language", "unrelated_mention", "repetitive", "unknown_words", "copied_example",
    "duplicate", "too_few_valid_lines",
)


@dataclass
class FilterConfig:
    """Limits applied to each generated sentence.

    min_words / max_words: sentence length in words (the prompt asks for 10-30: a little slack).
    max_mention_words / max_mention_chars: mention length.
    min_valid_lines: an output with fewer acceptable sentences is rejected whole
        (None: half the requested sentences, at least 1).
    require_overlap: an invented mention (not a KB name of the concept) must share a word stem
        with one of the concept's names, or abbreviate one (below).
    accept_abbreviations: accept acronyms and abbreviations of the concept's names ("HTA",
        "EPOC reagudizada", "insuf. cardiaca"; see :mod:`.abbreviations`), also in capitals.
    min_known_share: with a vocabulary (the training corpus's words), the share of the words
        around the mention that must be in it: a fluency check that rejects invented words.
    min_distinct_share: in sentences of 10 words or more, the share of distinct words (small
        models loop: "la necesidad de la necesidad de la necesidad ...").
    """

    min_words: int = 6
    max_words: int = 50
    max_mention_words: int = 12
    max_mention_chars: int = 100
    min_valid_lines: Optional[int] = None
    require_overlap: bool = True
    accept_abbreviations: bool = True
    min_known_share: float = 0.9
    min_distinct_share: float = 0.6


@dataclass(frozen=True)
class SynthSentence:
    text: str
    start: int
    end: int
    is_kb_name: bool

    @property
    def mention(self) -> str:
        return self.text[self.start:self.end]


# ----------------------------------------------------------------------------- language heuristic

_MARKERS: Dict[str, Set[str]] = {
    "en": {"of", "the", "and", "with", "without", "for", "from", "by", "to", "on", "at", "in",
           "or", "due", "left", "right", "disease", "disorder", "syndrome", "pain", "acute",
           "chronic", "type", "severe", "mild", "injury", "swelling", "bleeding", "lung", "heart",
           "kidney", "liver", "blood", "skin", "bone", "brain", "chest", "head", "neck", "back",
           "failure", "procedure", "surgery", "test", "scan", "tumor", "tumour", "cancer",
           "fever", "cough", "headache", "weakness", "loss", "high", "low", "upper", "lower"},
    "es": {"de", "del", "la", "el", "los", "las", "y", "con", "sin", "por", "para", "en", "o",
           "derecho", "derecha", "izquierdo", "izquierda", "dolor", "enfermedad", "síndrome",
           "trastorno", "agudo", "aguda", "crónico", "crónica", "tipo", "grave", "leve",
           "pulmón", "corazón", "riñón", "hígado", "sangre", "piel", "hueso", "cabeza",
           "tumor", "cáncer", "fiebre", "tos", "debilidad", "pérdida", "alto", "alta", "bajo"},
    "fr": {"de", "du", "des", "la", "le", "les", "et", "avec", "sans", "par", "pour", "en",
           "ou", "droit", "droite", "gauche", "douleur", "maladie", "syndrome", "trouble",
           "aigu", "aiguë", "chronique", "type", "grave", "sévère", "poumon", "cœur", "rein",
           "foie", "sang", "peau", "os", "tête", "tumeur", "cancer", "fièvre", "toux",
           "faiblesse", "perte", "haut", "bas"},
}
_SUFFIXES: Dict[str, Tuple[str, ...]] = {
    "en": ("ing", "ness", "ity", "ous", "tomy", "logy", "ed"),
    "es": ("ción", "sión", "dad", "oso", "osa", "ico", "ica", "ía", "tomía", "logía"),
    "fr": ("eux", "euse", "ique", "ée", "té", "tomie", "logie", "ment"),
}
_CHARS: Dict[str, str] = {"en": "", "es": "ñáíóú¿¡", "fr": "èêàçœëîôûù"}


def _lang_score(words: Sequence[str], raw: str, lang: str, target: str) -> int:
    """How many signs of ``lang`` (that are not also signs of ``target``) the words show."""
    markers = _MARKERS.get(lang, set()) - _MARKERS.get(target, set())
    suffixes = tuple(s for s in _SUFFIXES.get(lang, ()) if s not in _SUFFIXES.get(target, ()))
    chars = set(_CHARS.get(lang, "")) - set(_CHARS.get(target, ""))
    score = 0
    for w in words:
        if w in markers:
            score += 1
        elif len(w) > 4 and suffixes and w.endswith(suffixes):
            score += 1
    score += sum(1 for c in set(raw) if c in chars)
    return score


def looks_foreign(mention: str, lang: str) -> bool:
    """True when ``mention`` shows more signs of another language than of ``lang``.

    A pragmatic heuristic (function words, frequent medical words, suffixes, accented letters
    of English, Spanish and French): "pain in the chest" is foreign to Spanish, "dolor de
    cabeza" to English; "síndrome de Down" is Spanish.
    """
    lower = mention.lower()
    words = _WORD.findall(lower)
    if not words or lang not in _MARKERS:
        return False
    own = _lang_score(words, lower, lang, "")
    for other in _MARKERS:
        if other == lang:
            continue
        score = _lang_score(words, lower, other, lang)
        if score >= 1 and score > own:
            return True
    return False


# ----------------------------------------------------------------------------- helpers


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _WS.sub(" ", text).strip()


def words_of(text: str) -> List[str]:
    """The folded (lower-case, accent-free) words of ``text``."""
    return _WORD.findall(_fold(text))


def known_share(words: Sequence[str], vocabulary: Set[str]) -> float:
    """The share of ``words`` found in ``vocabulary`` (1.0 for no words)."""
    return sum(w in vocabulary for w in words) / len(words) if words else 1.0


def _stems(text: str) -> Set[str]:
    return {w[:5] for w in words_of(text) if len(w) >= 4}


def _is_all_caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def _strip_prefix(line: str, prefix: str) -> Optional[str]:
    s = _LIST_MARKER.sub("", line.strip()).strip()
    s = s.replace("**", "")
    if s.lower().startswith(prefix.lower()):
        return s[len(prefix):].strip()
    bare = prefix.rstrip(":").strip().lower()
    if bare and s.lower().startswith(bare) and s[len(bare):len(bare) + 1] in (" ", "-", "."):
        return s[len(bare):].lstrip(" -.:").strip()
    return None


def _unquote(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and text[0] in "\"'“«" and text[-1] in "\"'”»":
        text = text[1:-1].strip()
    return text


def _unbracket(body: str, match: "re.Match") -> Tuple[str, int, int]:
    inner = match.group(1)
    mention = inner.strip()
    before = body[:match.start()] + inner[:len(inner) - len(inner.lstrip())]
    after = inner[len(inner.rstrip()):] + body[match.end():]
    before = _WS.sub(" ", before).lstrip()
    after = _WS.sub(" ", after).rstrip()
    text = before + mention + after
    return text, len(before), len(before) + len(mention)


# ----------------------------------------------------------------------------- parse


def parse_output(
    raw: str,
    *,
    prefix: str,
    n_mentions: int,
    names: Iterable[str],
    lang: str,
    examples: Iterable[str] = (),
    filters: Optional[FilterConfig] = None,
    vocabulary: Optional[Set[str]] = None,
) -> Tuple[List[SynthSentence], Counter]:
    """Accepted sentences of one output and a Counter of rejection reasons.

    names: the KB names of the concept (always accepted as mentions, whatever their case).
    examples: the style examples of the prompt (a copied example is rejected).
    vocabulary: folded words of real text (:func:`words_of`); when given, sentences whose
        context has too few known words are rejected (``unknown_words``).
    """
    cfg = filters or FilterConfig()
    names = list(names)
    kb_names = {_fold(n) for n in names}
    kb_caps = {_fold(n) for n in names if _is_all_caps(n)}
    name_stems: Set[str] = set()
    for n in names:
        name_stems |= _stems(n)
    copied = {_fold(ex.replace("[", "").replace("]", "")) for ex in examples}
    rejected: Counter = Counter()
    accepted: List[SynthSentence] = []
    seen: Set[str] = set()

    candidates: List[Optional[str]] = []  # body after the prefix, or None: no prefix
    for line in raw.splitlines():
        body = _strip_prefix(line, prefix)
        if body is not None:
            candidates.append(_unquote(body))
        elif "[" in line and "]" in line:
            candidates.append(None)
    if len(candidates) > n_mentions:
        rejected["surplus_line"] += len(candidates) - n_mentions  # not part of `requested`
        candidates = candidates[:n_mentions]
    rejected["missing_line"] += n_mentions - len(candidates)

    for body in candidates:
        reason, sent = _check(body, cfg, names, kb_names, kb_caps, name_stems, copied, seen,
                              lang, vocabulary)
        if reason:
            rejected[reason] += 1
        else:
            seen.add(_fold(sent.text))
            accepted.append(sent)

    min_valid = cfg.min_valid_lines
    if min_valid is None:
        min_valid = max(1, n_mentions // 2)
    if accepted and len(accepted) < min(min_valid, n_mentions):
        rejected["too_few_valid_lines"] += len(accepted)
        accepted = []
    return accepted, Counter({k: v for k, v in rejected.items() if v})


def _check(body, cfg, names, kb_names, kb_caps, name_stems, copied, seen, lang, vocabulary):
    if body is None:
        return "no_prefix", None
    found = list(_BRACKETED.finditer(body))
    if not found:
        return "no_mention", None
    if len(found) > 1:
        return "several_mentions", None
    text, start, end = _unbracket(body, found[0])
    if "[" in text or "]" in text:
        return "several_mentions", None
    mention = text[start:end]
    if not mention or not any(c.isalnum() for c in mention):
        return "empty_mention", None
    if len(mention) > cfg.max_mention_chars or len(mention.split()) > cfg.max_mention_words:
        return "mention_too_long", None
    n_words = len(text.split())
    if n_words < cfg.min_words:
        return "sentence_too_short", None
    if n_words > cfg.max_words:
        return "sentence_too_long", None
    folded = _fold(mention)
    abbrev = cfg.accept_abbreviations
    if _is_all_caps(mention) and folded not in kb_caps \
            and not (abbrev and any(is_acronym_of(mention, n) for n in names)):
        return "all_caps", None
    is_name = folded in kb_names
    if not is_name:
        if any(c in mention for c in "()"):
            return "parentheses", None
        if looks_foreign(mention, lang):
            return "foreign_language", None
        if cfg.require_overlap and not (_stems(mention) & name_stems) \
                and not (abbrev and abbreviates(mention, names)):
            return "unrelated_mention", None
    words = words_of(text)
    if len(words) >= 10 and len(set(words)) / len(words) < cfg.min_distinct_share:
        return "repetitive", None
    if vocabulary is not None:
        context = words_of(text[:start]) + words_of(text[end:])
        if known_share(context, vocabulary) < cfg.min_known_share:
            return "unknown_words", None
    if _fold(text) in copied:
        return "copied_example", None
    if _fold(text) in seen:
        return "duplicate", None
    return None, SynthSentence(text, start, end, is_name)
