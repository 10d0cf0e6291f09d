from collections import Counter

import pytest

from spacy_syncabel.training import mix_examples


def test_upsample_is_one_to_one_and_deterministic():
    real = [("r", i) for i in range(7)]
    syn = [("s", i) for i in range(30)]
    mixed = mix_examples(real, syn, seed=1)
    assert len(mixed) == 60
    assert Counter(src for src, _ in mixed) == {"r": 30, "s": 30}
    assert [src for src, _ in mixed] == ["r", "s"] * 30  # interleaved
    assert sorted(x for x in mixed if x[0] == "s") == syn  # synthetic used exactly once
    assert {x for x in mixed if x[0] == "r"} == set(real)  # real cycled
    assert mix_examples(real, syn, seed=1) == mixed
    assert mix_examples(real, syn, seed=2) != mixed


def test_human_only_and_weights():
    real = list(range(10))
    assert sorted(mix_examples(real, None)) == real
    assert sorted(mix_examples(real, [])) == real
    syn = [-i - 1 for i in range(30)]
    mixed = mix_examples(real, syn, mode="weights", weights=(3, 1), seed=0)
    assert len(mixed) == 40
    assert sum(1 for x in mixed if x >= 0) == 30
    with pytest.raises(ValueError, match="E060"):
        mix_examples(real, syn, mode="nope")
    with pytest.raises(ValueError, match="E061"):
        mix_examples(real, syn, mode="weights", weights=(0, 0))
