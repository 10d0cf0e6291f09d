"""One calibrated probability for every linked mention, whatever path ranked it.

A mention's n-best is ranked by the LM (``score`` = exp of the length-normalised log-prob), by
the cascade's dictionary (an exact match, ``score`` 1.0) or by its retriever (``score`` = the
TF-IDF cosine): three scales. The calibrator maps each path's top ``score`` (for the LM path,
the value the LM ranked it by: log(score) + prior_weight × similarity) to the probability that
the top candidate is right, with one monotone map per path fitted on dev mentions
(``training/probability.py``): Platt scaling (``sigmoid(a × score + b)``, ``a`` ≥ 0) or
isotonic regression (a non-decreasing step function, interpolated between its thresholds). A
path without dev mentions uses the map fitted on all paths together (``"*"``).

The other n-best entries get their own score through the same family of maps (the LM's for an
LM-ranked list, the retriever's for a cascade-settled one, whose entries after an exact match
are retrieval scores), capped so that probabilities never rise down the list and sum to at most
1. Only the top entry's probability is fitted and measured.

With a feature model (``linking/probability_features.py``: one logistic regression over a few
n-best features of every path, chosen by ``calibrate`` when it cross-validates better on dev),
the top entry's probability is the model's and the maps serve the other entries (and a path
the model was not fitted on).

Saved as plain JSON (``probability.json`` in the linker's folder); ``nil_threshold``: the
probability under which a mention is NIL (chosen for a target precision by ``calibrate``).
Format ``spacy_syncabel.probability.v1``: the maps; ``.v2``: the maps and the feature model
(``"model"``). Both load.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..errors import Errors
from ..types import PATH_DICTIONARY, PATH_LM, PATH_RETRIEVER
from .probability_features import FeatureModel

JOINT = "*"
METHODS = ("platt", "isotonic")
FEATURES = ("score", "rank")
FORMAT = "spacy_syncabel.probability.v1"
#: the format of a calibrator with a feature model
FORMAT_V2 = "spacy_syncabel.probability.v2"


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass(frozen=True)
class ScoreMap:
    """A monotone map from a raw score to a probability: ``platt`` (``coef``, ``intercept``)
    or ``isotonic`` (``x``, ``y``: thresholds, interpolated, clipped at both ends)."""

    method: str
    coef: float = 0.0
    intercept: float = 0.0
    x: Sequence[float] = ()
    y: Sequence[float] = ()
    #: what is mapped: the candidate's ``score``, or (``rank``, the LM path in rerank) the
    #: value the LM ranked it by, log(score) + prior_weight × similarity
    feature: str = "score"
    prior_weight: float = 0.0

    def value(self, cand: Mapping[str, Any]) -> float:
        """The feature of one n-best entry."""
        score = float(cand["score"])
        if self.feature != "rank":
            return score
        sim = cand.get("similarity")
        return math.log(max(score, 1e-12)) + self.prior_weight * float(sim or 0.0)

    def of(self, cand: Mapping[str, Any]) -> float:
        """The probability of one n-best entry."""
        return self(self.value(cand))

    def __call__(self, score: float) -> float:
        if self.method == "platt":
            return _sigmoid(self.coef * float(score) + self.intercept)
        if not len(self.x):
            return 0.0
        return float(np.interp(float(score), self.x, self.y))

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"method": self.method, "feature": self.feature}
        if self.feature == "rank":
            out["prior_weight"] = self.prior_weight
        if self.method == "platt":
            return {**out, "coef": self.coef, "intercept": self.intercept}
        return {**out, "x": [float(v) for v in self.x], "y": [float(v) for v in self.y]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> "ScoreMap":
        method = data.get("method") if isinstance(data, Mapping) else None
        try:
            feature = str(data.get("feature", "score")) if method else "score"
            if feature not in FEATURES:
                raise ValueError(f"unknown feature {feature!r} (use {' or '.join(FEATURES)})")
            weight = float(data.get("prior_weight", 0.0)) if method else 0.0
            if not math.isfinite(weight) or weight < 0:
                raise ValueError("prior_weight must be finite and >= 0")
            kind = {"feature": feature, "prior_weight": weight}
            if method == "platt":
                coef, intercept = float(data["coef"]), float(data["intercept"])
                if not (math.isfinite(coef) and math.isfinite(intercept)) or coef < 0:
                    raise ValueError("coef must be finite and >= 0, intercept finite")
                return cls("platt", coef=coef, intercept=intercept, **kind)
            if method == "isotonic":
                x = [float(v) for v in data["x"]]
                y = [float(v) for v in data["y"]]
                if (len(x) != len(y) or not x or any(b < a for a, b in zip(x, x[1:]))
                        or any(b < a for a, b in zip(y, y[1:]))
                        or any(not 0.0 <= v <= 1.0 for v in y)
                        or not all(math.isfinite(v) for v in x)):
                    raise ValueError("x and y must be non-empty, equally long and "
                                     "non-decreasing, y within [0, 1]")
                return cls("isotonic", x=tuple(x), y=tuple(y), **kind)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(Errors.E501.format(where=where, problem=str(err))) from err
        raise ValueError(Errors.E501.format(where=where, problem=f"unknown method {method!r} "
                                            f"(use {' or '.join(METHODS)})"))


@dataclass
class ProbabilityCalibrator:
    """Per-path score maps (``maps``: path -> :class:`ScoreMap`, ``"*"`` the joint one), the
    NIL threshold, what the fit measured (``fit``: a plain-JSON record) and optionally the
    feature model that gives the top entry's probability (``model``)."""

    maps: Dict[str, ScoreMap]
    nil_threshold: Optional[float] = None
    fit: Dict[str, Any] = field(default_factory=dict)
    model: Optional[FeatureModel] = None

    def map_for(self, path: Optional[str]) -> Optional[ScoreMap]:
        return self.maps.get(str(path)) or self.maps.get(JOINT)

    def probabilities(self, nbest: Sequence[Mapping[str, Any]]) -> List[float]:
        """The probability of each n-best entry (module docstring): the top entry's is
        calibrated, the others are capped so the list never rises and sums to at most 1."""
        if not nbest:
            return []
        path = nbest[0].get("path")
        top = self.map_for(path)
        rest = self.map_for(PATH_LM if path == PATH_LM else PATH_RETRIEVER)
        out: List[float] = []
        left = 1.0
        by_model = self.model is not None and self.model.covers(path)
        for i, cand in enumerate(nbest):
            fn = top if i == 0 else rest
            if i == 0 and by_model:
                p = self.model.probability(nbest)
            else:
                p = fn.of(cand) if fn is not None else 0.0
            if out:
                p = min(p, out[-1], left)
            p = max(0.0, min(1.0, p))
            out.append(p)
            left = max(0.0, left - p)
        return out

    def is_nil(self, probability: float) -> bool:
        """Whether a top probability falls under the NIL threshold."""
        return self.nil_threshold is not None and probability < self.nil_threshold

    def to_dict(self) -> Dict[str, Any]:
        out = {"format": FORMAT if self.model is None else FORMAT_V2,
               "nil_threshold": self.nil_threshold,
               "maps": {k: m.to_dict() for k, m in sorted(self.maps.items())}, "fit": self.fit}
        if self.model is not None:
            out["model"] = self.model.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "probability.json") -> "ProbabilityCalibrator":
        """Read :meth:`to_dict`'s output, either format (E500 when it is not one)."""
        if not isinstance(data, Mapping) or data.get("format") not in (FORMAT, FORMAT_V2):
            raise ValueError(Errors.E500.format(where=where,
                                                expected=f"{FORMAT}' or '{FORMAT_V2}"))
        maps = data.get("maps")
        if not isinstance(maps, Mapping) or not maps:
            raise ValueError(Errors.E501.format(where=where, problem="no 'maps' object"))
        known = (JOINT, PATH_LM, PATH_DICTIONARY, PATH_RETRIEVER)
        parsed = {}
        for key, value in maps.items():
            if key not in known:
                raise ValueError(Errors.E501.format(
                    where=where, problem=f"unknown path {key!r} (known: {', '.join(known)})"))
            parsed[key] = ScoreMap.from_dict(value, f"{where}: maps.{key}")
        thr = data.get("nil_threshold")
        if thr is not None and (not isinstance(thr, (int, float)) or not 0.0 <= thr <= 1.0):
            raise ValueError(Errors.E501.format(where=where,
                                                problem="nil_threshold must be in [0, 1]"))
        fit = data.get("fit") if isinstance(data.get("fit"), Mapping) else {}
        model = None
        if data["format"] == FORMAT_V2:
            if "model" not in data:
                raise ValueError(Errors.E640.format(where=where, format=FORMAT_V2))
            model = FeatureModel.from_dict(data["model"], f"{where}: model")
        elif "model" in data:
            raise ValueError(Errors.E641.format(where=where, format=FORMAT, v2=FORMAT_V2))
        return cls(parsed, None if thr is None else float(thr), dict(fit), model)


__all__ = ["FEATURES", "FORMAT", "FORMAT_V2", "JOINT", "METHODS", "ProbabilityCalibrator",
           "ScoreMap"]
