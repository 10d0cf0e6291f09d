"""Training in two processes (torchrun, gloo on CPU): one process writes, the dev set is decoded
once in all, and the saved pipeline links."""
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import spacy

from spacy_syncabel.corpus.jsonl import write_jsonl
from spacy_syncabel.training.distributed import shard, world

from ..conftest import KB_ROWS
from .test_sft import make_corpus

ROOT = Path(__file__).resolve().parents[2]


class _FakeEngine:
    """``link`` answers the gold code for even prompt ids and a wrong one for odd ones."""

    kb = None

    def __init__(self):
        self.decoded = []

    def link(self, prompt_ids, groups, mentions):
        from spacy_syncabel.types import Candidate

        self.decoded.extend(p[0] for p in prompt_ids)
        return [[Candidate(name="x", code="gold" if p[0] % 2 == 0 else "wrong", score=1.0,
                           logprob=0.0)] for p in prompt_ids]


class _ThreadGroup:
    """A stand-in for ``torch.distributed`` shared by threads, one rank per thread:
    ``all_reduce`` sums the ranks' tensors at a barrier."""

    class ReduceOp:
        SUM = "sum"

    def __init__(self, world_size):
        self.world_size = world_size
        self.local = threading.local()
        self.barrier = threading.Barrier(world_size)
        self.values = [None] * world_size

    def get_rank(self):
        return self.local.rank

    def get_world_size(self):
        return self.world_size

    def get_backend(self):
        return "gloo"

    def all_reduce(self, tensor, op):
        assert op == "sum"
        self.values[self.local.rank] = tensor.clone()
        self.barrier.wait()
        total = sum(self.values)
        self.barrier.wait()
        tensor.copy_(total)


def test_shared_dev_recall_decodes_each_mention_once(monkeypatch):
    """Two ranks: each decodes its share of the dev set, both get the recall of the whole."""
    from spacy_syncabel.training import distributed
    from spacy_syncabel.training.examples import DevSet

    group = _ThreadGroup(2)
    monkeypatch.setattr(distributed, "_dist", lambda: group)
    n = 11
    dev = DevSet(prompt_ids=[[i] for i in range(n)], groups=[None] * n, codes=["gold"] * n,
                 mentions=["m"] * n)
    results = {}

    def run(rank):
        group.local.rank = rank
        engine = _FakeEngine()
        results[rank] = (engine.decoded, distributed.shared_dev_recall(engine, dev),
                         distributed.is_main_process())

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    decoded = results[0][0] + results[1][0]
    assert sorted(decoded) == list(range(n))  # every dev mention once, none twice
    assert results[0][0] and results[1][0]
    assert results[0][1] == results[1][1] == pytest.approx(6 / n)  # 0, 2, ..., 10 are right
    assert [results[r][2] for r in range(2)] == [True, False]
    single = _FakeEngine()  # and without a process group: everything on one process
    monkeypatch.setattr(distributed, "_dist", lambda: None)
    assert distributed.shared_dev_recall(single, dev) == pytest.approx(6 / n)
    assert single.decoded == list(range(n))


def test_shard_and_world_without_process_group(monkeypatch):
    items = list(range(7))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items and all(parts)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert world() == (1, 2)  # from the launcher's variables before the group exists


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args, tmp_path, name):
    """``torchrun --nproc_per_node 2 -m spacy_syncabel ARGS``: (returncode, stdout by rank,
    stderr by rank); each rank's output goes to its own file."""
    logs = tmp_path / f"logs-{name}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_port()),
           "--log-dir", str(logs), "--redirects", "3", "-m", "spacy_syncabel", *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    rank_out = {int(p.parent.name): p.read_text() for p in logs.rglob("stdout.log")}
    rank_err = {int(p.parent.name): p.read_text()[-3000:] for p in logs.rglob("stderr.log")}
    assert proc.returncode == 0, (proc.stderr[-2000:], rank_err)
    assert sorted(rank_out) == [0, 1]
    return rank_out


def _last_json(text, first_key):
    return json.loads(text[text.rindex("{\n  \"%s\"" % first_key):])


@pytest.fixture(scope="module")
def ddp_run(kb_tsv, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ddp")
    docs = make_corpus(2)
    write_jsonl(docs, tmp_path / "train.jsonl")
    write_jsonl(docs[::3], tmp_path / "dev.jsonl")
    recipe = tmp_path / "recipe.cfg"  # the engine's defaults; the run's values as overrides
    recipe.write_text("[training]\nseed = 0\n", encoding="utf8")
    out = tmp_path / "run"
    rank_out = _torchrun(
        ["train", str(recipe), "--paths.kb", str(kb_tsv), "--paths.train",
         str(tmp_path / "train.jsonl"), "--paths.dev", str(tmp_path / "dev.jsonl"), "-o",
         str(out), "--model.base_model", "tiny:32,1", "--training.max_steps", "4",
         "--training.batch_size", "4", "--training.eval_steps", "2", "--training.save_steps", "2",
         "--training.logging_steps", "1", "--training.dev_size", "0", "--linker.num_beams", "2",
         "--threads", "1", "--no-progress"], tmp_path, "train")
    return tmp_path, out, {r: _last_json(text, "output") for r, text in rank_out.items()}


def test_train_under_torchrun_two_processes(ddp_run):
    _, out, summaries = ddp_run
    # both processes trained together: 4 steps of 2 x 4 examples, one RNG state per rank
    assert summaries[0]["global_step"] == summaries[1]["global_step"] == 4
    ckpt = out / "checkpoints" / "checkpoint-4"
    assert sorted(p.name for p in ckpt.glob("rng_state_*.pth")) == ["rng_state_0.pth",
                                                                    "rng_state_1.pth"]
    # the same dev Recall@1 on both ranks (counts summed across them)
    assert summaries[0]["best_dev_recall@1"] == summaries[1]["best_dev_recall@1"] is not None
    # only the main process wrote the log, the summary and the pipelines
    assert "model_last" in summaries[0] and "model_last" not in summaries[1]
    log = [json.loads(line) for line in (out / "training_log.jsonl").open(encoding="utf8")]
    assert [r.get("event") for r in log].count("train_begin") == 1
    assert [r.get("event") for r in log].count("train_end") == 1
    losses = [r["step"] for r in log if "loss" in r]
    evals = [r["step"] for r in log if "eval_recall@1" in r]
    assert losses == [1, 2, 3, 4] and evals == [2, 4]  # no duplicated line
    assert not list(out.glob("*.tmp")) and not list(out.glob("*.old"))

    # the saved pipeline loads and links
    nlp = spacy.load(out / "model-last")
    text = "Varón que presenta fiebre y dolor abdominal."
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(text.index("fiebre"), text.index("fiebre") + 6, label="SINTOMA")]
    doc = nlp(doc)
    assert doc.ents[0].kb_id_ in {c for c, _, g in KB_ROWS if g == "SINTOMA"}
    assert doc.ents[0]._.syncabel
    assert (out / "model-best" / "config.cfg").is_file()


@pytest.mark.slow
def test_dpo_under_torchrun_two_processes(ddp_run):
    """DPO rounds in two processes: the same mined pairs on both ranks (mined in halves),
    DDP steps over them, one writer."""
    tmp_path, sft_out, _ = ddp_run
    out = tmp_path / "dpo"
    rank_out = _torchrun(
        ["dpo", str(tmp_path / "recipe.cfg"), "--paths.pipeline", str(sft_out / "model-last"),
         "--paths.train", str(tmp_path / "train.jsonl"), "--paths.dev",
         str(tmp_path / "dev.jsonl"), "-o", str(out), "--mining.rounds", "1", "--mining.top_k",
         "2", "--training.batch_size", "2", "--mining.gold_fallback", "true",
         "--training.dev_size", "0", "--threads", "1", "--no-progress"], tmp_path, "dpo")
    states = {r: _last_json(text, "pipeline") for r, text in rank_out.items()}
    rounds = [states[r]["rounds"][0] for r in (0, 1)]
    pairs = [json.loads(line) for line in (out / "round-1" / "pairs.jsonl").open(encoding="utf8")]
    assert rounds[0]["pairs"] == rounds[1]["pairs"] == len(pairs) > 2
    assert rounds[0]["by_case"] == rounds[1]["by_case"]
    # 2 processes x 2 pairs per step
    assert rounds[0]["steps"] == rounds[1]["steps"] == -(-len(pairs) // 4)
    assert rounds[0]["dev_recall@1"] == rounds[1]["dev_recall@1"]
    saved = json.loads((out / "rounds.json").read_text(encoding="utf8"))
    assert [r["round"] for r in saved["rounds"]] == [1]  # written once, by one process
    nlp = spacy.load(out / "model-best")
    assert nlp.get_pipe("syncabel_linker").kb is not None


class _FakeAccelerator:
    """What ``final_model`` uses of accelerate under FSDP: the gathered full state dict."""

    def __init__(self, drop=()):
        self.drop = set(drop)

    def get_state_dict(self, model):
        return {k: v.detach().clone() for k, v in model.state_dict().items()
                if k not in self.drop}

    def unwrap_model(self, model):
        return model


class _FakeShardedTrainer:
    is_fsdp_enabled = True

    def __init__(self, model, main=True, drop=()):
        self.model = self.model_wrapped = model
        self.accelerator = _FakeAccelerator(drop)
        self.main = main

    def is_world_process_zero(self):
        return self.main


def test_final_model_from_gathered_state(tiny_lm):
    """Sharded weights: the gathered state dict becomes a fresh plain model on the main
    process (same outputs), nothing on the others, and E170 when weights are missing."""
    import torch

    from spacy_syncabel.training.distributed import final_model

    model, _ = tiny_lm
    fresh = final_model(_FakeShardedTrainer(model))
    assert fresh is not model and not any(p.is_meta for p in fresh.parameters())
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert torch.allclose(fresh(ids).logits, model.eval()(ids).logits)
    assert final_model(_FakeShardedTrainer(model, main=False)) is None
    key = "model.layers.0.mlp.up_proj.weight"
    with pytest.raises(RuntimeError, match="E170"):
        final_model(_FakeShardedTrainer(model, drop=[key]))
