"""Template backend, JSONL output, resuming, sharding, crash safety (kill -9)."""
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest
import spacy

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.synthesis import (PromptBuilder, SynthWriter, TemplateGenerator, done_path,
                                      read_done, select_concepts, synthesize)


def _run(kb, out, **kwargs):
    return synthesize(kb, out, TemplateGenerator(seed=0), PromptBuilder(kb, lang="es"),
                      progress=False, **kwargs)


def test_registered_backends():
    for name in ("HFGenerator", "OpenAIGenerator", "TemplateGenerator"):
        assert spacy.registry.misc.get(f"spacy_syncabel.{name}.v1")
    gen = spacy.registry.resolve({"g": {"@misc": "spacy_syncabel.TemplateGenerator.v1",
                                        "seed": 3}})["g"]
    assert isinstance(gen, TemplateGenerator) and gen.seed == 3


def test_template_output_is_a_corpus(small_kb, tmp_path):
    out = tmp_path / "synth.jsonl"
    stats = _run(small_kb, out)
    assert stats.concepts_done == len(small_kb.codes)
    assert stats.requested == 5 * len(small_kb.codes)
    assert stats.accepted + sum(v for k, v in stats.rejected.items() if k != "surplus_line") \
        == stats.requested
    docs = read_corpus(out)
    assert len(docs) == stats.accepted > 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf8").splitlines()]
    for doc, rec in zip(docs, lines):
        (m,) = doc.mentions
        assert m.code == rec["meta"]["concept"]
        assert m.label in small_kb.groups_of(m.code)
        assert doc.text[m.start:m.end] in small_kb.synonyms_of(m.code)
        assert rec["meta"]["backend"] == "template"
        assert rec["meta"]["prompt_version"] == "syncabel-templates-es/1"
    assert len({d.id for d in docs}) == len(docs)
    # resuming a finished run does nothing
    again = _run(small_kb, out)
    assert again.concepts_skipped == len(small_kb.codes) and again.concepts_done == 0


def test_shards_partition_the_kb(spaccc_kb):
    all_codes = set(spaccc_kb.codes)
    shards = [select_concepts(spaccc_kb, f"{i}/3") for i in range(3)]
    assert sum(len(s) for s in shards) == len(all_codes)
    assert set().union(*shards) == all_codes
    assert select_concepts(spaccc_kb, "1/3", limit=10) == shards[1][:10]
    with pytest.raises(ValueError, match="E051"):
        select_concepts(spaccc_kb, "3/3")


def test_recovery_truncates_unfinished_concept(small_kb, tmp_path):
    out = tmp_path / "synth.jsonl"
    _run(small_kb, out, limit=4)
    full = out.read_bytes()
    done = read_done(out)
    assert len(done) == 4
    # crash after writing a concept's lines (one of them partial) but before its .done line
    with open(out, "ab") as f:
        f.write(b'{"id": "synth-x-0", "text": "frase"}\n{"id": "synth-x-1", "te')
    with open(done_path(out), "ab") as f:
        f.write(b'{"concept": "x", "off')  # partial .done line
    with pytest.warns(UserWarning, match="W072"):
        _run(small_kb, out, limit=4)
    assert out.read_bytes() == full
    assert [r["concept"] for r in read_done(out)] == [r["concept"] for r in done]


def test_second_writer_is_refused(small_kb, tmp_path):
    out = tmp_path / "synth.jsonl"
    with SynthWriter(out):
        with pytest.raises(RuntimeError, match="E076"):
            SynthWriter(out).open()


def test_output_without_sidecar_is_refused(small_kb, tmp_path):
    out = tmp_path / "synth.jsonl"
    out.write_text('{"id": "a", "text": "b"}\n', encoding="utf8")
    with pytest.raises(ValueError, match="E077"):
        _run(small_kb, out)


def _cli(kb, out, *extra):
    return [sys.executable, "-m", "spacy_syncabel", "synth", str(kb), str(out),
            "--backend", "template", "--no-progress", *extra]


def test_kill_9_and_restart(kb_tsv, small_kb, tmp_path):
    """SIGKILL mid-run, then resume: every concept exactly once, same file as an unbroken run."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    ref = tmp_path / "ref.jsonl"
    subprocess.run(_cli(kb_tsv, ref), check=True, env=env, capture_output=True, timeout=120)
    out = tmp_path / "killed.jsonl"
    proc = subprocess.Popen(_cli(kb_tsv, out, "--delay", "0.3"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            if len(read_done(out)) >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the generator never got going")
        time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    n_done = len(read_done(out))
    assert 3 <= n_done < len(small_kb.codes)
    subprocess.run(_cli(kb_tsv, out), check=True, env=env, capture_output=True, timeout=120)
    concepts = Counter(r["concept"] for r in read_done(out))
    assert set(concepts) == set(small_kb.codes) and set(concepts.values()) == {1}
    assert out.read_bytes() == ref.read_bytes()
    docs = read_corpus(out)
    assert len({d.id for d in docs}) == len(docs)
