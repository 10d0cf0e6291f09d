"""Training recipes (configs/*.cfg): what `train` / `dpo` resolve them into, overrides, coded
errors, and a tiny run whose saved pipeline records its recipe."""
from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest
import spacy
import yaml
from typer.testing import CliRunner

from spacy_syncabel.cli import app
from spacy_syncabel.corpus import write_jsonl
from spacy_syncabel.linking.settings import LinkSettings
from spacy_syncabel.training.recipe import (META_KEY, parse_overrides, resolve_dpo_recipe,
                                            resolve_train_recipe)

from .test_sft import make_corpus

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

# What the `train` step of project.yml handed train_linker before recipes, at 6525984: its
# vars (dataset spaccc) through the old flags, the old CLI's defaults for the flags it did
# not pass (`--max-train 0` meant all: None; `--save-steps ${vars.eval_steps}`; lora_alpha
# was 2 * --lora-r; n_best was min(5, --num-beams)).
OLD_TRAIN_CONFIG = dict(
    epochs=4.0, max_steps=-1, lr=0.001, batch_size=32, grad_accum=1, warmup=0.05,
    scheduler="cosine", weight_decay=0.0, max_grad_norm=1.0, lora=False, lora_r=16,
    lora_alpha=32, lora_dropout=0.05, bf16="auto", eval_steps=400, save_steps=400,
    save_total_limit=2, logging_steps=10, dev_size=300, patience=0, max_minutes=25.0, seed=0,
    top_k_targets=1, kb_name_examples=True, rank_candidates=0, rank_weight=1.0,
    train_aliases=True, calibrate=True, calibration_size=1000, mix_mode="upsample",
    mix_weights=(1.0, 1.0), max_train=None, num_threads=None, progress=True, resume=True)
OLD_LINKER_CONFIG = {"composite": None, "context_chars": 64, "mode": "beam_in_candidates",
                     "candidates": 10, "prior_weight": 10.0, "length_penalty": 1.0,
                     "max_context_tokens": 48, "num_beams": 5, "n_best": 5,
                     # the one setting added since: coordination-ellipsis composites
                     "composite_expand": True}
# the old `dpo` step: --rounds 3 --top-k 5 --beta 0.1 --lr 0.0001 --dev-size 300, the rest
# the old CLI's defaults
OLD_DPO_CONFIG = dict(
    rounds=3, chunk_size=None, top_k=5, num_beams=10, match="intersect", gold_fallback=False,
    beta=0.1, loss_type="sigmoid", lr=0.0001, epochs=1.0, batch_size=8, grad_accum=1,
    warmup=0.1, scheduler="linear", max_grad_norm=1.0, max_pairs=None, lora=False, lora_r=16,
    lora_alpha=32, lora_dropout=0.05, dev_size=300, patience=2, max_minutes=None, seed=0,
    num_threads=None, logging_steps=10, progress=True, resume=True)


def _project_command(name: str) -> list:
    """The arguments after `python -m spacy_syncabel` of a project.yml step, vars filled in."""
    project = yaml.safe_load((ROOT / "project.yml").read_text(encoding="utf8"))
    step = next(c for c in project["commands"] if c["name"] == name)
    line = step["script"][0]
    for key, value in project["vars"].items():
        line = line.replace("${vars.%s}" % key, str(value))
    return shlex.split(line)[3:]


def _split(args: list) -> tuple:
    """(CONFIG, the dotted overrides) of a `train`/`dpo` command line, --output dropped."""
    rest = list(args[2:])
    i = rest.index("--output")
    del rest[i:i + 2]
    return ROOT / args[1], parse_overrides(rest)


def _effective(linker_config: dict) -> LinkSettings:
    return LinkSettings.from_dict({k: v for k, v in linker_config.items() if k != "composite"})


def test_project_train_step_resolves_to_the_old_command_line():
    """project.yml's `train` step (linker_cpu.cfg + its --paths/--model overrides) builds the
    very TrainConfig and linker settings the old flag-per-setting command line built."""
    from spacy_syncabel.training import TrainConfig

    args = _project_command("train")
    assert args[0] == "train" and args[1] == "configs/linker_cpu.cfg"
    config, overrides = _split(args)
    recipe = resolve_train_recipe(config, overrides)
    old = dataclasses.asdict(TrainConfig(**OLD_TRAIN_CONFIG))
    new = dataclasses.asdict(recipe.config)
    assert {k: (old[k], new[k]) for k in old if old[k] != new[k]} == {}
    assert _effective(recipe.linker_config) == _effective(OLD_LINKER_CONFIG)
    assert recipe.linker_config["composite"] is OLD_LINKER_CONFIG["composite"] is None
    assert (recipe.base_model, recipe.lang, recipe.label_map) == ("tiny:256,4", "es", {})
    assert recipe.paths == {"kb": "corpus/spaccc/kb", "train": "corpus/spaccc/train.jsonl",
                            "dev": "corpus/spaccc/dev.jsonl", "synthetic": None}


def test_project_dpo_step_resolves_to_the_old_command_line():
    from spacy_syncabel.training.dpo import DPORunConfig

    config, overrides = _split(_project_command("dpo"))
    recipe = resolve_dpo_recipe(config, overrides)
    assert recipe.config == DPORunConfig(**OLD_DPO_CONFIG)
    assert recipe.paths["pipeline"] == "training/spaccc/model-best"


def _dry_run(*args) -> dict:
    res = CliRunner().invoke(app, list(args) + ["--dry-run"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_llama3_8b_recipe_has_the_reference_values():
    """The published SynCABEL recipe: full fine-tuning at 3e-5, linear schedule, 3% warmup, 3
    epochs over the upsampled real + synthetic mix; whole-sentence context, up to 128 new
    tokens, 5 beams of plain constrained beam search; no calibration, no budget."""
    out = _dry_run("train", str(CONFIGS / "linker_llama3_8b.cfg"))
    cfg, linker = out["resolved"]["train_config"], out["resolved"]["linker_config"]
    assert out["resolved"]["base_model"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert (cfg["lr"], cfg["scheduler"], cfg["warmup"], cfg["epochs"]) == (3e-5, "linear",
                                                                           0.03, 3.0)
    assert cfg["lora"] is False and cfg["mix_mode"] == "upsample" and cfg["seed"] == 42
    assert cfg["max_minutes"] is None and cfg["calibrate"] is False
    assert linker["context_chars"] == 0 and linker["max_new_tokens"] == 128
    assert linker["num_beams"] == 5 and linker["mode"] == "beam"
    assert linker["prior_weight"] == 0.0


def test_dpo_angel_recipe_has_the_reference_values():
    out = _dry_run("dpo", str(CONFIGS / "dpo_angel.cfg"))["resolved"]["dpo_config"]
    assert (out["beta"], out["lr"], out["epochs"], out["num_beams"], out["top_k"]) == (
        0.1, 1e-5, 1.0, 10, 5)
    assert (out["rounds"], out["patience"], out["batch_size"], out["match"]) == (
        10, 3, 64, "intersect")


def test_overrides_apply_before_interpolation():
    out = _dry_run("train", str(CONFIGS / "linker_cpu.cfg"), "--training.lr", "3e-5",
                   "--training.eval_steps", "50", "--linker.num_beams", "3",
                   "--paths.kb", "kb.tsv", "--model.dataset", "ncbi")
    cfg = out["resolved"]["train_config"]
    assert cfg["lr"] == 3e-5  # exactly: not 3.0000000000000004e-05
    assert cfg["eval_steps"] == cfg["save_steps"] == 50  # save_steps = ${training.eval_steps}
    assert out["resolved"]["linker_config"]["num_beams"] == 3
    assert out["paths"]["kb"] == "kb.tsv"
    assert out["resolved"]["lang"] == "en"  # the dataset sets the language


@pytest.mark.parametrize("args,code,named", [
    (["--training.learning_rate", "1e-4"], "E461", "training.learning_rate"),
    (["--optimizer.lr", "1e-4"], "E460", "[optimizer]"),
    (["--linker.beams", "3"], "E461", "num_beams"),
    (["--training.lr", "fast"], "E462", "training.lr"),
    (["--lr", "1e-4"], "E465", "--lr"),
])
def test_a_bad_override_is_a_coded_error_naming_it(args, code, named):
    res = CliRunner().invoke(app, ["train", str(CONFIGS / "linker_cpu.cfg"), "--dry-run"] + args)
    assert res.exit_code != 0
    message = str(res.exception)
    assert code in message and named in message, message


def test_a_bad_key_in_the_file_is_a_coded_error(tmp_path):
    recipe = tmp_path / "bad.cfg"
    recipe.write_text("[training]\nlr = 1e-4\nwarmup_ratio = 0.03\n", encoding="utf8")
    with pytest.raises(ValueError, match="E461.*training.warmup_ratio.*warmup"):
        resolve_train_recipe(recipe)
    recipe.write_text("[mining]\nrounds = 2\n", encoding="utf8")
    with pytest.raises(ValueError, match=r"E460.*\[mining\]"):
        resolve_train_recipe(recipe)
    assert resolve_dpo_recipe(recipe).config.rounds == 2


def test_tiny_train_records_its_recipe_in_the_pipeline(kb_tsv, tmp_path):
    """`train CONFIG` end to end with a tiny model: the saved pipeline's meta holds the
    resolved recipe, and keeps it through spacy.load -> nlp.to_disk -> spacy.load."""
    write_jsonl(make_corpus(), tmp_path / "train.jsonl")
    recipe = tmp_path / "tiny.cfg"
    recipe.write_text((CONFIGS / "linker_cpu.cfg").read_text(encoding="utf8"), encoding="utf8")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, [
        "train", str(recipe), "--output", str(out), "--no-progress", "--threads", "1",
        "--paths.kb", str(kb_tsv), "--paths.train", str(tmp_path / "train.jsonl"),
        "--model.base_model", "tiny:32,1", "--training.max_steps", "3",
        "--training.batch_size", "4", "--training.bf16", "false", "--linker.num_beams", "2",
        "--calibration.enabled", "false"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    nlp = spacy.load(out / "model-best")
    saved = nlp.meta[META_KEY]
    assert saved["resolved"]["train_config"]["max_steps"] == 3
    assert saved["resolved"]["linker_config"]["num_beams"] == 2
    assert saved["paths"]["kb"] == str(kb_tsv)
    assert nlp.get_pipe("syncabel_linker").settings.num_beams == 2
    nlp.to_disk(tmp_path / "again")
    assert spacy.load(tmp_path / "again").meta[META_KEY] == saved


def test_tiny_train_calibrates_on_the_dev_masked_view(kb_tsv, tmp_path):
    """Training's calibration passes the training corpus: a KB name only dev mentions use
    ("pirexia"; its code keeps "fiebre") is hidden while dev is linked for the fit."""
    docs = make_corpus(n_per_name=2)
    train = [d for d in docs if "pirexia" not in d.text]
    dev = [d for d in docs if "pirexia" in d.text or "cefalea" in d.text]
    write_jsonl(train, tmp_path / "train.jsonl")
    write_jsonl(dev, tmp_path / "dev.jsonl")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, [
        "train", str(CONFIGS / "linker_cpu.cfg"), "--output", str(out), "--no-progress",
        "--threads", "1", "--paths.kb", str(kb_tsv), "--paths.train", str(tmp_path / "train.jsonl"),
        "--paths.dev", str(tmp_path / "dev.jsonl"), "--model.base_model", "tiny:32,1",
        "--training.max_steps", "2", "--training.batch_size", "4", "--training.bf16", "false",
        "--training.max_minutes", "null", "--linker.num_beams", "2"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    fit = json.loads((out / "model-best" / "syncabel_linker" / "probability.json")
                     .read_text(encoding="utf8"))["fit"]
    assert fit["dev_view"] == "masked"
    assert fit["dev_masking"]["hidden_kb_names"] == 1  # pirexia; fiebre stays
