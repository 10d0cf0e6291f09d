"""The linker's decode settings: one frozen dataclass, the single source of every setting.

The spaCy component's config block maps one-to-one onto :class:`LinkSettings`; the CLI's
defaults and the training commands read their defaults from it. A different way of decoding
(mining negatives, a calibrated weight) is a different settings object made with
:meth:`LinkSettings.replace`, never a mutation.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..errors import Errors

#: beam search in the whole group's trie (the SynCABEL way)
MODE_BEAM = "beam"
#: beam search in a trie over the mention's top-N retrieved candidate names
MODE_BEAM_IN_CANDIDATES = "beam_in_candidates"
#: every retrieved candidate scored by teacher forcing (exhaustive: none is pruned)
MODE_RERANK = "rerank"
MODES = (MODE_BEAM, MODE_BEAM_IN_CANDIDATES, MODE_RERANK)


@dataclass(frozen=True)
class LinkSettings:
    """How mentions are decoded and ranked (see the README's settings table)."""

    mode: str = MODE_BEAM
    num_beams: int = 5
    n_best: int = 5
    # ranking score = summed log-prob / n_tokens ** length_penalty, as HF generate (1.0: the
    # reference's default; 0.0: summed log-prob)
    length_penalty: float = 1.0
    constrained: bool = True
    composite: bool = False
    merge_by_code: bool = True
    candidates: int = 10
    # with composite on, candidate modes also consider up to this many composite candidates
    # per mention (linking/composite.py): scored in rerank, their parts added to the
    # candidate trie in beam_in_candidates; 0: single retrieved names only
    composite_pairs: int = 8
    # the composite gate, as SynCABEL's constrained beam search decides: a composite answer
    # only when, after each of its names but the last, the model ranks <SEP> above stopping,
    # log P(<SEP>) - log P(EOS) >= composite_margin (0.0: the reference's rule; higher keeps a
    # coordinated single-code mention single). None: no gate (pipelines saved without it).
    # `calibrate` chooses it on dev.
    composite_margin: Optional[float] = None
    # composite candidates from coordination-ellipsis expansion (linking/composite.py:
    # determiners dropped, hyphenated compounds split, the shared head distributed with each
    # number of its words); false: the conjuncts as split (pipelines saved without it)
    composite_expand: bool = False
    # the split gate: a composite candidate is proposed only when the mean of its parts'
    # retrieval scores (each against its own conjunct; 1.0 for a composite alias) minus the
    # whole mention's best single score is at least this (higher keeps a coordinated
    # single-code mention single). None: no split gate.
    composite_split: Optional[float] = None
    # the learned composite gate (linking/composite_gate.py): a composite candidate is
    # proposed only when the gate the linker saved (composite_gate.json, fitted on the
    # training split by `calibrate --train`) gives it a probability of being the gold at
    # least its threshold; false: no learned gate (pipelines saved without it)
    composite_gate: bool = False
    prior_weight: float = 0.0
    threshold: float = 0.0
    # the cascade (engine.link only): a mention the dictionary settles (its folded text is a
    # KB name or training alias of its group naming ONE code) or the retriever settles (top-1
    # score minus the best score of another code >= cascade_margin) skips the LM;
    # cascade_margin None: exact/alias matches only. `calibrate` chooses the margin on dev.
    cascade: bool = False
    cascade_margin: Optional[float] = None
    batch_size: int = 32
    # bound on (prompt + completion tokens) × beams per forward batch: memory stays bounded
    # whatever the input
    max_batch_tokens: int = 16384
    # the context: the mention's sentence (0: whole, SynCABEL's input) or N characters each
    # side within it, narrowed until the prompt fits max_context_tokens
    max_context_tokens: int = 256
    max_mention_tokens: int = 64
    context_chars: int = 0
    max_new_tokens: int = 48

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in MODES:
            problems.append(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.num_beams < 1 or not 1 <= self.n_best <= self.num_beams:
            problems.append(f"need 1 <= n_best ({self.n_best}) <= num_beams ({self.num_beams})")
        if self.mode != MODE_BEAM and self.candidates < 1:
            problems.append(f"mode {self.mode!r} needs candidates >= 1, got {self.candidates}")
        if self.composite_pairs < 0:
            problems.append(f"composite_pairs must be >= 0, got {self.composite_pairs}")
        for key in ("batch_size", "max_batch_tokens", "max_context_tokens",
                    "max_mention_tokens", "max_new_tokens"):
            if getattr(self, key) < 1:
                problems.append(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.prior_weight < 0 or self.length_penalty < 0 or self.context_chars < 0:
            problems.append("prior_weight, length_penalty and context_chars must be >= 0")
        if self.cascade_margin is not None and not self.cascade_margin >= 0:
            problems.append(f"cascade_margin must be >= 0 or null (exact matches only), got "
                            f"{self.cascade_margin}")
        if self.composite_margin is not None and not math.isfinite(self.composite_margin):
            problems.append(f"composite_margin must be a finite number or null (no gate), got "
                            f"{self.composite_margin}")
        if self.composite_split is not None and not math.isfinite(self.composite_split):
            problems.append(f"composite_split must be a finite number or null (no split "
                            f"gate), got {self.composite_split}")
        if problems:
            raise ValueError(Errors.E100.format(problems="; ".join(problems)))

    @property
    def uses_candidates(self) -> bool:
        return self.mode != MODE_BEAM

    @property
    def composite_candidates(self) -> int:
        """Composite candidates per mention in the candidate modes (0 unless ``composite``)."""
        return self.composite_pairs if self.composite and self.uses_candidates else 0

    def replace(self, **changes: Any) -> "LinkSettings":
        """A copy with ``changes`` applied (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "LinkSettings":
        """Settings from a mapping; unknown keys are an error (E101), not ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(Errors.E101.format(keys=unknown, known=sorted(names)))
        return cls(**values)


DEFAULT_SETTINGS = LinkSettings()


def setting_default(name: str) -> Any:
    """The default of one setting (the CLI's options read theirs from here)."""
    return getattr(DEFAULT_SETTINGS, name)
