"""DPO on mined hard negatives: SFT tokenization through TRL, one round end to end, resume."""
import json
import warnings

import pytest
import spacy
import torch
from typer.testing import CliRunner

from spacy_syncabel.cli import app
from spacy_syncabel.models import tokenizer_fingerprint
from spacy_syncabel.corpus.jsonl import write_jsonl
from spacy_syncabel.prompting import SEP_TOKEN, encode_completion, encode_prompt
from spacy_syncabel.training.dpo import (DPORunConfig, _make_trainer_class, pair_logprobs,
                                         pair_features, pair_margins, pairs_dataset, train_dpo)
from spacy_syncabel.training.negatives import (PreferencePair, collect_mentions, mine_negatives,
                                               read_pairs)
from spacy_syncabel.training.pipeline_io import DPO_META_KEY
from spacy_syncabel.training.sft import save_pipeline
from spacy_syncabel.types import CorpusDoc, GoldMention

from ..conftest import KB_ROWS, TEXTS

PATTERNS = ["Paciente que presenta {} desde hace días.", "Antecedentes de {} sin otros hallazgos."]


def make_corpus():
    docs = []
    for i, (code, name, group) in enumerate(KB_ROWS):
        for j, pattern in enumerate(PATTERNS):
            text = pattern.format(name)
            start = text.index(name)
            docs.append(CorpusDoc(f"d{i}-{j}", text,
                                  [GoldMention(start, start + len(name), group, code)]))
    return docs


@pytest.fixture(scope="module")
def sft_pipeline(kb_tsv, small_kb, tmp_path_factory):
    """A random tiny Llama linker saved as a pipeline folder (stands in for SFT's output)."""
    from spacy_syncabel.models import tiny_llama

    lm, tok = tiny_llama(hidden_size=48, num_layers=2, num_heads=4, intermediate_size=96,
                         vocab_size=400, seed=1)(small_kb, TEXTS)
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={"dtype": "float32"})
    linker.set_model(lm, tok, small_kb)
    return save_pipeline(nlp, tmp_path_factory.mktemp("sft") / "model-best")


def load_linker(path):
    return spacy.load(path).get_pipe("syncabel_linker")


def test_trl_gets_sft_token_ids(sft_pipeline, tmp_path):
    linker = load_linker(sft_pipeline)
    tok = linker.tokenizer
    sep_id = tok.convert_tokens_to_ids(SEP_TOKEN)
    docs = make_corpus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mentions = collect_mentions(docs[:12], linker)
    pairs, _ = mine_negatives(linker.engine, mentions, k=5, gold_fallback=True)
    assert pairs
    composite = PreferencePair("c#0", pairs[0].prompt, "fiebre<SEP>dolor abdominal", "cefalea",
                               "386661006+21522001", "25064002", 0, 1, "gold_fallback",
                               "386661006+21522001")
    rows = [pair_features(tok, p) for p in pairs + [composite]]
    for p, row in zip(pairs + [composite], rows):
        assert row["prompt_ids"] == encode_prompt(tok, p.prompt)
        assert row["chosen_ids"] == encode_completion(tok, p.chosen.split(SEP_TOKEN), sep_id)
        assert row["rejected_ids"] == encode_completion(tok, p.rejected.split(SEP_TOKEN), sep_id)
        assert row["chosen_ids"][-1] == tok.eos_token_id
    assert rows[-1]["chosen_ids"].count(sep_id) == 1
    # the trainer keeps the ids as they are (TRL would re-tokenize prompt + chosen as text) ...
    from trl import DPOConfig

    fp = linker.fingerprint["tokenizer"]
    args = DPOConfig(output_dir=str(tmp_path / "trainer"), report_to="none", use_cpu=True,
                     max_length=None, gradient_checkpointing=False, per_device_train_batch_size=4,
                     bf16=False)  # TRL defaults to bf16 autocast, even on CPU
    ref = load_linker(sft_pipeline).lm
    import copy

    trainer = _make_trainer_class()(model=linker.lm, ref_model=ref, args=args,
                                    train_dataset=pairs_dataset(tok, pairs),
                                    processing_class=copy.deepcopy(tok))
    assert [trainer.train_dataset[i] for i in range(len(pairs))] == rows[:-1]
    # ... and scores the trie's tokens: TRL's reference log-probs of the rejected beams equal
    # the beam search's own log-probs (and our teacher-forced ones)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(min(4, len(pairs)))])
    _, ref_rejected = trainer.compute_ref_log_probs(ref, batch)
    ours = [r for _, r in pair_logprobs(ref, rows[:len(ref_rejected)])]
    beam = [p.rejected_logprob for p in pairs[:len(ref_rejected)]]
    assert torch.allclose(ref_rejected, torch.tensor(ours), atol=1e-3)
    assert torch.allclose(ref_rejected, torch.tensor(beam), atol=1e-3)
    ranked = [p for p in pairs if p.chosen_rank > 0]
    assert ranked and all(
        abs(a - p.chosen_logprob) < 1e-3 for a, p in
        zip([c for c, _ in pair_logprobs(ref, [pair_features(tok, p) for p in ranked])],
            ranked))
    assert tokenizer_fingerprint(tok) == fp  # TRL set its pad token on a copy


def test_one_round_raises_margins_and_resumes(sft_pipeline, tmp_path, empty_recipe):
    docs = make_corpus()
    out = tmp_path / "dpo"
    cfg = DPORunConfig(rounds=1, lr=1e-3, epochs=2, batch_size=8, gold_fallback=True,
                       progress=False, logging_steps=5)
    state = train_dpo(sft_pipeline, docs, out, dev=docs[::3], config=cfg)
    assert [r["round"] for r in state["rounds"]] == [1] and state["resumed_rounds"] == []
    rec = state["rounds"][0]
    pairs = read_pairs(out / "round-1" / "pairs.jsonl")
    assert rec["pairs"] == len(pairs) > 5 and sum(rec["by_case"].values()) == len(pairs)
    mining = json.loads((out / "round-1" / "mining.json").read_text())
    assert mining["by_case"] == rec["by_case"] and mining["chunk_mentions"] == len(docs)
    for key in ("dev_recall@1", "dev_recall@5", "seconds", "steps"):
        assert key in rec
    assert state["baseline"]["dev_recall@1"] is not None
    # the preferred names gained probability against the rejected ones under the policy
    rows = [pair_features(load_linker(sft_pipeline).tokenizer, p) for p in pairs]
    before = pair_margins(load_linker(sft_pipeline).lm, rows)
    after = pair_margins(load_linker(out / "round-1" / "model").lm, rows)
    mean_before, mean_after = sum(before) / len(before), sum(after) / len(after)
    assert mean_after > mean_before + 0.5, (mean_before, mean_after)
    assert abs(mean_after - rec["pair_margin_after"]) < 1e-2
    assert sum(a > b for a, b in zip(after, before)) > 0.7 * len(pairs)
    # model-best is a spaCy pipeline that links
    best = spacy.load(out / "model-best")
    assert json.loads((out / "model-best" / "training.json").read_text())["round"] \
        == state["best_round"]
    text = "Varón que presenta fiebre."
    doc = best.make_doc(text)
    doc.ents = [doc.char_span(text.index("fiebre"), text.index("fiebre") + 6, label="SINTOMA")]
    assert best(doc).ents[0].kb_id_
    # resume: the finished round is skipped (CLI, same output folder)
    mtime = (out / "round-1" / "pairs.jsonl").stat().st_mtime_ns
    train_path, dev_path = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    write_jsonl(docs, train_path)
    write_jsonl(docs[::3], dev_path)
    res = CliRunner().invoke(app, ["dpo", str(empty_recipe), "--paths.pipeline",
                                   str(sft_pipeline), "--paths.train", str(train_path),
                                   "--paths.dev", str(dev_path), "--output", str(out),
                                   "--mining.rounds", "1", "--no-progress"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.output)
    assert again["resumed_rounds"] == [1] and len(again["rounds"]) == 1
    assert (out / "round-1" / "pairs.jsonl").stat().st_mtime_ns == mtime
    assert json.loads((out / "rounds.json").read_text())["rounds"] == state["rounds"]
    # the CLI records its resolved recipe in the pipelines it saves
    recorded = spacy.load(out / "round-1" / "model").meta.get(DPO_META_KEY)
    assert recorded is None  # round 1 was trained by train_dpo() without a recipe
    res = CliRunner().invoke(app, ["dpo", str(empty_recipe), "--paths.pipeline",
                                   str(sft_pipeline), "--paths.train", str(train_path),
                                   "--output", str(tmp_path / "cli"), "--mining.rounds", "1",
                                   "--training.epochs", "1", "--no-progress"])
    assert res.exit_code == 0, res.output
    recorded = spacy.load(tmp_path / "cli" / "model-best").meta[DPO_META_KEY]
    assert recorded["resolved"]["dpo_config"]["rounds"] == 1
    assert recorded["paths"]["pipeline"] == str(sft_pipeline)
    # a later run with more rounds continues from round 1's model (which mines round 2)
    round1 = load_linker(out / "round-1" / "model")
    state = train_dpo(sft_pipeline, docs, out, dev=docs[::3], config=cfg, rounds=2)
    assert state["resumed_rounds"] == [1] and [r["round"] for r in state["rounds"]] == [1, 2]
    pairs2 = read_pairs(out / "round-2" / "pairs.jsonl")
    rows2 = [pair_features(round1.tokenizer, p) for p in pairs2]
    mined = [r for _, r in pair_logprobs(round1.lm, rows2)]
    assert all(abs(a - p.rejected_logprob) < 1e-3 for a, p in zip(mined, pairs2))
    assert (out / "round-2" / "model").is_dir() and not (out / "round-1" / "model").exists()

def test_lora_round(sft_pipeline, tmp_path):
    docs = make_corpus()
    state = train_dpo(sft_pipeline, docs[:20], tmp_path / "lora", rounds=1, lora=True, lr=5e-3,
                      epochs=2, gold_fallback=True, progress=False)
    rec = state["rounds"][0]
    assert rec["pairs"] > 0 and rec["pair_margin_after"] > rec["pair_margin_before"]
    assert "dev_recall@1" not in rec and state["best_round"] == 1  # no dev: the last round
    model_dir = tmp_path / "lora" / "model-best" / "syncabel_linker" / "model"
    assert not (model_dir / "adapter_config.json").exists()  # merged into plain weights
    assert type(load_linker(tmp_path / "lora" / "model-best").lm).__name__ == "LlamaForCausalLM"
