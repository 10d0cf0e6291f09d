"""The learned composite gate: P(a composite candidate is the gold code set | plain features).

A coordinated mention ("diabetes e hipertensión", "ictericia de piel y mucosas") may name a
code set or one code, and its composite candidates may hold the right parts or not. The gate
reads features computable at link time, before the LM: the mention's (:func:`gate_features`:
its label, the shape of its conjuncts and coordinator, the whole mention's best single
retrieval score and exact match, its composite candidates' split evidence,
``linking/composite.py``) and each candidate's own (:func:`candidate_features`: its place,
retrieval score, split evidence, number of parts). A logistic regression fitted on the
training split's coordinated mentions (``training/composite_gate_fit.py``, each under a
masked view of the KB: a training mention must not meet its own surface as a KB name) turns
them into a probability; a composite candidate is proposed only when its probability reaches
the gate's ``threshold``. A mention without a coordinator gets no composite candidate.

Both kinds of wrong composite answer are learned at once: to a single-code mention (no
candidate is the gold) and with wrong parts (another candidate would have been).

Saved as JSON (``composite_gate.json`` in the linker folder): feature names, the
standardisation, coefficients, intercept and threshold; :meth:`CompositeGate.from_dict`
checks every field (E630, E631).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .candidates import Retrieved
from .composite import conjuncts, expanded_conjuncts
from ..errors import Errors

#: the saved gate's ``format``
GATE_FORMAT = "syncabel-composite-gate"
GATE_VERSION = 1
#: the file in the linker folder
GATE_FILE = "composite_gate.json"
#: the numeric features, in order (the group's one-hot features follow, ``group=<name>``)
NUMERIC_FEATURES = (
    "n_conjuncts", "coord_and", "coord_or", "coord_comma", "coord_slash", "compound",
    "mention_words", "min_conjunct_words", "max_conjunct_words", "first_conjunct_words",
    "last_conjunct_words", "shared_head", "whole_best", "whole_exact", "n_proposals",
    "composite_alias", "first_evidence", "best_evidence", "first_part_mean",
    # the candidate's own
    "cand_rank", "cand_score", "cand_evidence", "cand_part_mean", "cand_parts",
    "cand_parts_match_conjuncts", "cand_is_alias", "cand_evidence_gap",
)
_AND = re.compile(r"\s(?:y|e|and|et)\s", re.IGNORECASE)
_OR = re.compile(r"\s(?:o|ni|or|ou)\s", re.IGNORECASE)
#: the evidence a mention without any composite candidate gets
NO_EVIDENCE = -1.0


def gate_features(mention: str, group: Optional[str], top: Sequence[Retrieved],
                  proposals: Sequence[Tuple[Retrieved, float]], exact: bool,
                  alias: bool) -> Optional[Dict[str, float]]:
    """One mention's features (None: not coordinated, the gate does not apply). ``top``: its
    retrieved single names, best first; ``proposals``: its composite candidates with their
    split evidence (no split gate); ``exact``: its text is a KB name or alias of one code;
    ``alias``: it is a composite alias."""
    expanded = expanded_conjuncts(mention)
    if not expanded:
        return None
    plain = conjuncts(mention)
    lengths = [len(p.split()) for p in expanded]
    best = float(top[0].score) if top else 0.0
    first_ev = proposals[0][1] if proposals else NO_EVIDENCE
    feats = {
        "n_conjuncts": float(len(expanded)),
        "coord_and": float(bool(_AND.search(mention))),
        "coord_or": float(bool(_OR.search(mention))),
        "coord_comma": float("," in mention or ";" in mention),
        "coord_slash": float("/" in mention),
        "compound": float(not plain),
        "mention_words": float(len(mention.split())),
        "min_conjunct_words": float(min(lengths)),
        "max_conjunct_words": float(max(lengths)),
        "first_conjunct_words": float(lengths[0]),
        "last_conjunct_words": float(lengths[-1]),
        "shared_head": float(min(lengths) < max(lengths)),
        "whole_best": best,
        "whole_exact": float(exact),
        "n_proposals": float(len(proposals)),
        "composite_alias": float(alias),
        "first_evidence": float(first_ev),
        "best_evidence": float(max((e for _, e in proposals), default=NO_EVIDENCE)),
        "first_part_mean": float(first_ev + best) if proposals else 0.0,
    }
    feats[f"group={group}"] = 1.0
    return feats


def candidate_features(mention_feats: Dict[str, float],
                       proposals: Sequence[Tuple[Retrieved, float]],
                       rank: int) -> Dict[str, float]:
    """The features of the ``rank``-th composite candidate of a mention: its mention's
    (:func:`gate_features`) and its own (place, retrieval score, split evidence, parts)."""
    from ..prompting import SEP_TOKEN

    cand, evidence = proposals[rank]
    best_ev = mention_feats["best_evidence"]
    n_parts = len(cand.name.split(SEP_TOKEN))
    return {**mention_feats, "cand_rank": float(rank), "cand_score": float(cand.score),
            "cand_evidence": float(evidence),
            "cand_part_mean": float(evidence + mention_feats["whole_best"]),
            "cand_parts": float(n_parts),
            "cand_parts_match_conjuncts": float(n_parts == mention_feats["n_conjuncts"]),
            "cand_is_alias": float(rank == 0 and mention_feats["composite_alias"] > 0),
            "cand_evidence_gap": float(best_ev - evidence)}


@dataclass(frozen=True)
class CompositeGate:
    """A fitted logistic regression over :func:`candidate_features` and its threshold."""

    features: Tuple[str, ...]
    coef: Tuple[float, ...]
    intercept: float
    mean: Tuple[float, ...]
    scale: Tuple[float, ...]
    threshold: float
    stats: Dict[str, Any] = field(default_factory=dict, compare=False)

    def probability(self, feats: Optional[Dict[str, float]]) -> float:
        """P(gold) of one composite candidate's features (0.0 for None)."""
        if feats is None:
            return 0.0
        z = self.intercept
        for name, w, m, s in zip(self.features, self.coef, self.mean, self.scale):
            z += w * (feats.get(name, 0.0) - m) / s
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def to_dict(self) -> Dict[str, Any]:
        return {"format": GATE_FORMAT, "version": GATE_VERSION, "features": list(self.features),
                "coef": list(self.coef), "intercept": self.intercept, "mean": list(self.mean),
                "scale": list(self.scale), "threshold": self.threshold, "stats": self.stats}

    @classmethod
    def from_dict(cls, data: Any, where: str = GATE_FILE) -> "CompositeGate":
        """A gate from its saved form; E630 when it is not one, E631 when a field is wrong."""
        if not isinstance(data, dict) or data.get("format") != GATE_FORMAT:
            raise ValueError(Errors.E630.format(where=where, expected=GATE_FORMAT))
        if data.get("version") != GATE_VERSION:
            raise ValueError(Errors.E631.format(
                where=where, problem=f"version {data.get('version')!r} is not {GATE_VERSION}"))
        feats = data.get("features")
        if not isinstance(feats, list) or not feats or \
                not all(isinstance(f, str) for f in feats):
            raise ValueError(Errors.E631.format(where=where,
                                                problem="'features' is not a list of names"))
        vectors = {}
        for key in ("coef", "mean", "scale"):
            v = data.get(key)
            if not isinstance(v, list) or len(v) != len(feats) or not all(
                    _finite(x) for x in v):
                raise ValueError(Errors.E631.format(
                    where=where, problem=f"'{key}' is not {len(feats)} finite numbers"))
            vectors[key] = tuple(float(x) for x in v)
        if any(s <= 0 for s in vectors["scale"]):
            raise ValueError(Errors.E631.format(where=where,
                                                problem="'scale' holds a value <= 0"))
        for key in ("intercept", "threshold"):
            if not _finite(data.get(key)):
                raise ValueError(Errors.E631.format(
                    where=where, problem=f"'{key}' is not a finite number"))
        if not 0.0 <= float(data["threshold"]) <= 1.0:
            raise ValueError(Errors.E631.format(where=where,
                                                problem="'threshold' is not in [0, 1]"))
        stats = data.get("stats", {})
        return cls(tuple(feats), vectors["coef"], float(data["intercept"]), vectors["mean"],
                   vectors["scale"], float(data["threshold"]),
                   stats if isinstance(stats, dict) else {})


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def feature_names(rows: Sequence[Dict[str, float]]) -> List[str]:
    """The numeric features, then every group's one-hot feature the rows hold (sorted)."""
    groups = sorted({k for r in rows for k in r if k.startswith("group=")})
    return list(NUMERIC_FEATURES) + groups


__all__ = ["CompositeGate", "gate_features", "candidate_features", "feature_names", "GATE_FILE",
           "GATE_FORMAT", "NUMERIC_FEATURES"]
