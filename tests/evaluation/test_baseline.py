"""The TF-IDF char 3-gram baseline: nearest names, per group, distinct codes."""
import warnings

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.evaluation import TfidfLinker
from spacy_syncabel.evaluation.metrics import LinkResult, recall_report

from ..conftest import DATA, needs_data


def test_nearest_name_within_group(small_kb):
    linker = TfidfLinker(small_kb)
    ranked = linker.link(["hipertension arterial", "dolores de cabeza", "ecografia abdominal"],
                         ["ENFERMEDAD", "SINTOMA", "PROCEDIMIENTO"], k=3)
    assert ranked[0][0] == "38341003"
    assert ranked[1][0] == "25064002"
    assert ranked[2][0] == "45036003"
    assert all(len(set(r)) == len(r) <= 3 for r in ranked)
    # restricted to the group: a symptom query never returns a procedure code
    for code in linker.link(["ecografía abdominal"], ["SINTOMA"], k=5)[0]:
        assert "SINTOMA" in small_kb.groups_of(code)


@needs_data
def test_spaccc_baseline_is_about_63(spaccc_kb):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = read_corpus(DATA / "spaccc" / "test_half.tsv")
    mentions = [(d.text[m.start:m.end], m.label, m.code) for d in docs for m in d.mentions]
    ranked = TfidfLinker(spaccc_kb).link([m for m, _, _ in mentions], [g for _, g, _ in mentions])
    rep = recall_report([LinkResult(c, r, g) for (_, g, c), r in zip(mentions, ranked)], (1, 5))
    assert rep["n_mentions"] == 4408
    assert 0.60 <= rep["recall@1"] <= 0.66
    assert rep["recall@5"] > rep["recall@1"] + 0.05
