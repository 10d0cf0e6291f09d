"""The top candidate's probability from a few features of its n-best, pooled over the paths.

One logistic regression for every path (``training/probability.py`` fits it on dev): an
indicator per path (its own base rate, shrunk toward all paths' by the L2 penalty, so a small
path borrows strength) and per path a few features read from the n-best the engine returns, so
nothing is needed at link time beyond ``ent._.syncabel``:

* ``lm``: the LM's own length-normalised log-prob of its answer (``log(score)``), the
  retriever's TF-IDF similarity of that answer, and the margin between the first and second
  entry's ranking value (log(score) + prior_weight × similarity);
* ``retriever``: the TF-IDF score, the margin to the next code's score and the number of
  n-best entries (a short list: few KB names share the mention's words);
* ``dictionary``: the margin between the exact match (1.0) and the best other code's score.

Measured on CANTEMIST dev2 the retriever's margin separates right from wrong answers (AUC 0.76)
where its score barely does (0.55), a list shorter than the n-best size is 98% right (against
48%), and the LM's log-prob (0.70) better than its ranking value
(0.65). Each feature is standardised on its path's dev mentions (0 on the other paths); a
margin with no second entry is the feature's cap. Saved inside ``probability.json``
(format ``spacy_syncabel.probability.v2``) as plain numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..errors import Errors
from ..types import PATH_DICTIONARY, PATH_LM, PATH_RETRIEVER, PATHS

#: the features of each path (``path:feature``), in the order of the model's columns
PATH_FEATURES: Dict[str, Sequence[str]] = {
    PATH_LM: ("log_score", "similarity", "margin"),
    PATH_RETRIEVER: ("score", "margin", "entries"),
    PATH_DICTIONARY: ("margin",),
}
#: a margin with no second entry (and the largest one counted)
MARGIN_CAP = {PATH_LM: 5.0, PATH_RETRIEVER: 1.0, PATH_DICTIONARY: 1.0}
MIN_LOG = -30.0


def _log(score: Any) -> float:
    return max(MIN_LOG, math.log(max(float(score), 1e-30)))


def _rank_value(cand: Mapping[str, Any], prior_weight: float) -> float:
    return _log(cand["score"]) + prior_weight * float(cand.get("similarity") or 0.0)


def path_features(nbest: Sequence[Mapping[str, Any]], prior_weight: float = 0.0,
                  ) -> Dict[str, float]:
    """The raw features (``PATH_FEATURES``) of an n-best's top entry, for its path."""
    path = str(nbest[0].get("path"))
    top = nbest[0]
    cap = MARGIN_CAP.get(path, 1.0)
    if path == PATH_LM:
        margin = (_rank_value(top, prior_weight) - _rank_value(nbest[1], prior_weight)
                  if len(nbest) > 1 else cap)
        return {"log_score": _log(top["score"]),
                "similarity": float(top.get("similarity") or 0.0),
                "margin": min(cap, max(0.0, margin))}
    margin = float(top["score"]) - float(nbest[1]["score"]) if len(nbest) > 1 else cap
    margin = min(cap, max(0.0, margin))
    if path == PATH_RETRIEVER:
        return {"score": float(top["score"]), "margin": margin, "entries": float(len(nbest))}
    return {"margin": margin}


@dataclass(frozen=True)
class FeatureModel:
    """A logistic regression over path indicators and per-path standardised features:
    ``columns`` (``path`` for an indicator, ``path:feature`` for a feature), with ``mean``,
    ``scale`` (1 and 0 for an indicator), ``coef`` and ``intercept``; ``paths`` the paths it
    was fitted on (another path's mentions are left to the per-path maps)."""

    columns: Sequence[str]
    mean: Sequence[float]
    scale: Sequence[float]
    coef: Sequence[float]
    intercept: float
    paths: Sequence[str]
    prior_weight: float = 0.0

    @staticmethod
    def column_names(paths: Sequence[str], featured: Optional[Sequence[str]] = None,
                     ) -> List[str]:
        """The columns for ``paths``: each path's indicator, then (a path of ``featured``,
        default all) its features."""
        out: List[str] = []
        for path in paths:
            out.append(path)
            if featured is None or path in featured:
                out += [f"{path}:{f}" for f in PATH_FEATURES[path]]
        return out

    @staticmethod
    def raw_row(nbest: Sequence[Mapping[str, Any]], columns: Sequence[str],
                prior_weight: float) -> List[float]:
        """The unstandardised row of an n-best (indicators 0/1, other paths' features 0)."""
        path = str(nbest[0].get("path"))
        feats = path_features(nbest, prior_weight) if path in PATH_FEATURES else {}
        row = []
        for col in columns:
            owner, _, name = col.partition(":")
            if not name:
                row.append(1.0 if owner == path else 0.0)
            else:
                row.append(feats.get(name, 0.0) if owner == path else 0.0)
        return row

    def standardise(self, raw: Sequence[float], path: str) -> List[float]:
        """``raw`` standardised; a column of another path stays 0."""
        out = []
        for col, x, mu, sd in zip(self.columns, raw, self.mean, self.scale):
            owner, _, name = col.partition(":")
            out.append((x - mu) / sd if name and owner == path else x)
        return out

    def covers(self, path: Optional[str]) -> bool:
        return path in self.paths

    def probability(self, nbest: Sequence[Mapping[str, Any]]) -> float:
        """The probability that the n-best's top entry is right."""
        path = str(nbest[0].get("path"))
        x = self.standardise(self.raw_row(nbest, self.columns, self.prior_weight), path)
        z = self.intercept + sum(c * v for c, v in zip(self.coef, x))
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": "logistic", "columns": list(self.columns),
                "mean": [float(v) for v in self.mean], "scale": [float(v) for v in self.scale],
                "coef": [float(v) for v in self.coef], "intercept": float(self.intercept),
                "paths": list(self.paths), "prior_weight": float(self.prior_weight)}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "FeatureModel":
        """Read :meth:`to_dict`'s output (E501 when it is not one)."""
        def bad(problem: str) -> ValueError:
            return ValueError(Errors.E501.format(where=where, problem=problem))

        if not isinstance(data, Mapping) or data.get("kind") != "logistic":
            raise bad("'model' is not a logistic feature model (kind 'logistic')")
        try:
            columns = [str(c) for c in data["columns"]]
            nums = {k: [float(v) for v in data[k]] for k in ("mean", "scale", "coef")}
            intercept = float(data["intercept"])
            paths = [str(p) for p in data["paths"]]
            weight = float(data.get("prior_weight", 0.0))
        except (KeyError, TypeError, ValueError) as err:
            raise bad(f"model: {err}") from err
        if any(len(v) != len(columns) for v in nums.values()) or not columns:
            raise bad("model: columns, mean, scale and coef must be non-empty and equally long")
        known = set(cls.column_names(PATHS))
        if any(c not in known for c in columns) or any(p not in PATHS or p not in columns
                                                        for p in paths):
            raise bad(f"model: unknown column or path (known columns: {', '.join(sorted(known))})")
        values = [v for vs in nums.values() for v in vs] + [intercept, weight]
        if not all(math.isfinite(v) for v in values) or any(s <= 0 for s in nums["scale"]):
            raise bad("model: numbers must be finite and scales > 0")
        return cls(tuple(columns), tuple(nums["mean"]), tuple(nums["scale"]),
                   tuple(nums["coef"]), intercept, tuple(paths), weight)


__all__ = ["FeatureModel", "MARGIN_CAP", "PATH_FEATURES", "path_features"]
