"""End-to-end training of a tiny Llama, and resuming a killed `train` command."""
import gc
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import spacy
import torch

from spacy_syncabel.corpus.jsonl import write_jsonl
from spacy_syncabel.training import CompletionCollator, build_examples, load_base_model, train_linker
from spacy_syncabel.types import CorpusDoc, GoldMention

from ..conftest import KB_ROWS

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = ["Paciente que presenta {} desde hace días.", "Se observa {} en la exploración.",
            "Antecedentes de {} sin otros hallazgos.", "Refiere {} de larga evolución.",
            "Ingresa por {} y se decide tratamiento.", "Destaca {} en la valoración inicial."]


def make_corpus(n_per_name=6):
    docs = []
    for i, (code, name, group) in enumerate(KB_ROWS):
        for j, pattern in enumerate(PATTERNS[:n_per_name]):
            text = pattern.format(name)
            start = text.index(name)
            docs.append(CorpusDoc(f"d{i}-{j}", text,
                                  [GoldMention(start, start + len(name), group, code)]))
    return docs


def mean_loss(lm, examples, pad_id):
    batch = CompletionCollator(pad_id)([e.features() for e in examples])
    lm.eval()
    with torch.no_grad():
        return float(lm(**batch).loss)


def test_tiny_end_to_end(kb_tsv, small_kb, tmp_path):
    docs = make_corpus()
    assert 100 <= len(docs) <= 120
    out = tmp_path / "run"
    summary = train_linker(kb_tsv, docs, out, dev=docs[::4], base_model="tiny:64,2",
                           max_steps=40, batch_size=8, lr=3e-3, warmup=0.1, eval_steps=20,
                           save_steps=20, logging_steps=5, dev_size=0, progress=False,
                           bf16=False, linker_config={"num_beams": 2, "n_best": 2})
    assert summary["global_step"] == 40 and summary["real_examples"] == len(docs)
    assert summary["composite"] is False  # no composite gold: off
    assert summary["composite_gold"]["gold"]["composite"] == 0
    assert spacy.load(out / "model-best").get_pipe("syncabel_linker").settings.composite is False
    for name in ("model-best", "model-last", "checkpoints", "training_log.jsonl"):
        assert (out / name).exists()
    log = [json.loads(line) for line in (out / "training_log.jsonl").open()]
    assert any("eval_recall@1" in r for r in log)
    assert any(r.get("examples_per_s") for r in log)
    # loss on the training examples: the initial model (same seed, same tokenizer) vs trained
    nlp0 = spacy.blank("es")
    lin0 = nlp0.add_pipe("syncabel_linker")
    lin0.set_model(*load_base_model("tiny:64,2", small_kb, [d.text for d in docs]), small_kb)
    nlp = spacy.load(out / "model-last")
    lin = nlp.get_pipe("syncabel_linker")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex0, _ = build_examples(docs, lin0)
        ex1, _ = build_examples(docs, lin)
    assert [e.input_ids for e in ex0] == [e.input_ids for e in ex1]  # same tokenizer
    pad = lin.tokenizer.pad_token_id
    before, after = mean_loss(lin0.lm, ex0, pad), mean_loss(lin.lm, ex1, pad)
    assert after < 0.7 * before, (before, after)
    # model-best opens offline and links
    best = spacy.load(out / "model-best")
    init = best.config["initialize"]["components"]["syncabel_linker"]
    assert init["kb_loader"]["path"] == "${paths.kb}"  # no path of this machine
    assert init["model"]["name_or_path"] == "${paths.base_model}"
    assert str(out.resolve()) not in (out / "model-best" / "config.cfg").read_text("utf8")
    text = "Varón que presenta fiebre y dolor abdominal."
    doc = best.make_doc(text)
    doc.ents = [doc.char_span(text.index("fiebre"), text.index("fiebre") + 6, label="SINTOMA")]
    doc = best(doc)
    code = doc.ents[0].kb_id_
    assert code in {c for c, _, g in KB_ROWS if g == "SINTOMA"}
    assert doc.ents[0]._.syncabel


def _complete(ckpt: Path) -> bool:
    return (ckpt / "trainer_state.json").is_file() and any(ckpt.glob("*.safetensors"))


def test_composite_is_decided_by_the_training_corpus_unless_set():
    from spacy_syncabel.training.sft import resolve_composite

    docs = make_corpus()  # no composite gold
    config, info = resolve_composite({"num_beams": 2}, docs)
    assert config == {"num_beams": 2, "composite": False} and info["decided_by"] == \
        "training corpus"
    text = "Presenta fiebre y cefalea."
    start = text.index("fiebre y cefalea")
    composite = CorpusDoc("c", text, [GoldMention(start, start + 16, "SINTOMA",
                                                  "386661006+25064002")])
    config, info = resolve_composite({"composite": None}, docs[:99] + [composite])
    assert config["composite"] is True and info["composite"] is True
    assert info["gold"] == {"composite": 1, "coded": 100, "share": 0.01}
    config, info = resolve_composite(None, docs[:100] + [composite])  # just under 1%
    assert config["composite"] is False
    config, info = resolve_composite({"composite": False}, [composite])
    assert config["composite"] is False and info["decided_by"] == "setting"


def test_resume_after_kill(kb_tsv, tmp_path, empty_recipe):
    corpus = tmp_path / "train.jsonl"
    write_jsonl(make_corpus(), corpus)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "spacy_syncabel", "train", str(empty_recipe), "--paths.kb",
           str(kb_tsv), "--paths.train", str(corpus), "--paths.dev", str(corpus), "--output",
           str(out), "--model.base_model", "tiny:32,1", "--training.max_steps", "150",
           "--training.batch_size", "4", "--training.save_steps", "5", "--training.eval_steps",
           "1000", "--training.dev_size", "5", "--linker.num_beams", "1", "--training.bf16",
           "false", "--no-progress", "--threads", "1"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    killed_at = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ckpts = [p for p in (out / "checkpoints").glob("checkpoint-*") if _complete(p)] \
                if (out / "checkpoints").exists() else []
            if ckpts:
                proc.send_signal(signal.SIGKILL)
                killed_at = max(int(p.name.split("-")[1]) for p in ckpts)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert killed_at is not None, proc.stderr.read().decode()[-2000:]
    assert killed_at < 150
    assert not (out / "model-last").exists()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["global_step"] == 150
    resumed = int(Path(summary["resumed_from"]).name.split("-")[1])
    assert resumed >= killed_at
    log = [json.loads(line) for line in (out / "training_log.jsonl").open()]
    begins = [r["step"] for r in log if r.get("event") == "train_begin"]
    assert begins == [0, resumed]
    state = json.loads((out / "checkpoints" / "checkpoint-150" / "trainer_state.json").read_text())
    assert state["global_step"] == 150
    # the resumed run logged only steps after the checkpoint
    steps_after = [r["step"] for r in log[log.index(next(r for r in log if r.get("event") == "train_begin" and r["step"] == resumed)):] if "loss" in r]
    assert steps_after and min(steps_after) > resumed
    assert spacy.load(out / "model-last").get_pipe("syncabel_linker").is_ready


def test_lora_is_merged_and_no_dev_copies_last(kb_tsv, tmp_path):
    out = tmp_path / "lora"
    summary = train_linker(kb_tsv, make_corpus(2), out, base_model="tiny:32,1", max_steps=6,
                           batch_size=8, lr=3e-3, save_steps=100, progress=False, bf16=False,
                           lora=True, lora_r=4, linker_config={"num_beams": 1, "n_best": 1})
    assert summary["global_step"] == 6 and summary["best_dev_recall@1"] is None
    lm = spacy.load(out / "model-best").get_pipe("syncabel_linker").lm
    assert type(lm).__name__ == "LlamaForCausalLM"
    assert not any("lora" in name for name, _ in lm.named_parameters())


def _tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update({f"{f.name}:{k}": v for k, v in load_file(str(f)).items()})
    assert out, f"no weights in {folder}"
    return out


def _optimizer_state(folder: Path) -> dict:
    state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=False)["state"]
    return {(i, k): v for i, s in state.items() for k, v in s.items() if torch.is_tensor(v)}


def _losses(out: Path) -> dict:
    log = [json.loads(line) for line in (out / "training_log.jsonl").open()]
    return {r["step"]: r["loss"] for r in log if "loss" in r}


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_resumed_run_matches_an_uninterrupted_one(kb_tsv, tmp_path, lora):
    """A run stopped after its step-4 checkpoint and resumed ends with the weights, optimizer
    state and losses of the same run without a stop (same seeds): the step counter alone
    would not give that."""
    import shutil

    kwargs = dict(base_model="tiny:32,1", max_steps=8, batch_size=4, lr=5e-3, warmup=0,
                  save_steps=4, save_total_limit=5, logging_steps=1, progress=False,
                  bf16=False, lora=lora, lora_r=4, num_threads=1,
                  linker_config={"num_beams": 1, "n_best": 1})
    docs = make_corpus(2)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    gc.freeze()  # the Trainer's closing gc.collect() skips the session's objects
    try:
        train_linker(kb_tsv, docs, whole, **kwargs)
        # the stopped run: what a kill right after its step-4 checkpoint leaves on disk
        shutil.copytree(whole / "checkpoints" / "checkpoint-4",
                        resumed / "checkpoints" / "checkpoint-4")
        summary = train_linker(kb_tsv, docs, resumed, **kwargs)
    finally:
        gc.unfreeze()
    assert summary["global_step"] == 8 and summary["resumed_from"].endswith("checkpoint-4")
    a, b = whole / "checkpoints" / "checkpoint-8", resumed / "checkpoints" / "checkpoint-8"
    wa, wb = _tensors(a), _tensors(b)
    assert wa.keys() == wb.keys()
    start = _tensors(a.parent / "checkpoint-4")
    assert any(not torch.equal(start[k], wa[k]) for k in wa)  # steps 5-8 did train
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6, msg=k)
    oa, ob = _optimizer_state(a), _optimizer_state(b)
    assert oa and oa.keys() == ob.keys()
    for k in oa:
        torch.testing.assert_close(ob[k], oa[k], rtol=1e-5, atol=1e-6, msg=str(k))
    la, lb = _losses(whole), _losses(resumed)
    assert sorted(lb) == [5, 6, 7, 8]
    assert [lb[s] for s in lb] == pytest.approx([la[s] for s in lb], rel=1e-4)
