"""Mixing real (human-annotated) and synthetic training examples, deterministically."""
from __future__ import annotations

import random
from typing import Iterator, List, Optional, Sequence, Tuple, TypeVar

from ..errors import Errors

T = TypeVar("T")


def _cycle(items: Sequence[T], rng: random.Random) -> Iterator[T]:
    """Endless stream over ``items``: a fresh shuffle on every pass."""
    order = list(range(len(items)))
    while True:
        rng.shuffle(order)
        for i in order:
            yield items[i]


def _shuffled(items: Sequence[T], rng: random.Random) -> List[T]:
    out = list(items)
    rng.shuffle(out)
    return out


def mix_examples(real: Sequence[T], synthetic: Optional[Sequence[T]] = None, *,
                 mode: str = "upsample", weights: Tuple[float, float] = (1.0, 1.0),
                 seed: int = 0) -> List[T]:
    """Mix real and synthetic examples into one training list.

    * no synthetic data: the real examples, shuffled (human-only training).
    * ``mode="upsample"`` (SynCABEL): real and synthetic alternate 1:1; the smaller set (the
      real one, usually) is cycled, with a new shuffle per pass, until the larger is
      exhausted. Result: ``2 * max(len(real), len(synthetic))`` examples.
    * ``mode="weights"``: ``len(real) + len(synthetic)`` examples drawn in the proportion
      ``weights = (w_real, w_synthetic)``, each set cycled as needed, then shuffled together.
    """
    rng = random.Random(seed)
    if not synthetic:
        return _shuffled(real, rng)
    if not real:
        return _shuffled(synthetic, rng)
    if mode == "upsample":
        n = max(len(real), len(synthetic))
        r_it, s_it = _cycle(real, rng), _cycle(synthetic, rng)
        out: List[T] = []
        for _ in range(n):
            out.append(next(r_it))
            out.append(next(s_it))
        return out
    if mode == "weights":
        w_real, w_syn = (float(w) for w in weights)
        if w_real < 0 or w_syn < 0 or w_real + w_syn <= 0:
            raise ValueError(Errors.E061.format(weights=weights))
        total = len(real) + len(synthetic)
        n_real = int(round(total * w_real / (w_real + w_syn)))
        r_it, s_it = _cycle(real, rng), _cycle(synthetic, rng)
        out = [next(r_it) for _ in range(n_real)] + [next(s_it) for _ in range(total - n_real)]
        rng.shuffle(out)
        return out
    raise ValueError(Errors.E060.format(mode=mode))
