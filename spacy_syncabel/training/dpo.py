"""Preference optimization of a trained linker on its own hard negatives (ANGEL's second stage).

Iterative rounds: round ``r`` mines preference pairs with the *current* model on chunk ``r`` of
the training mentions (:mod:`.negatives`), then runs TRL's ``DPOTrainer`` on them with the
model before the round as the reference; dev Recall@1 (constrained decoding) after each
round keeps the best model, and ``patience`` rounds without improvement stop the run.

Tokenization matches SFT exactly: the prompt is :func:`encode_prompt`, each completion is
:func:`encode_completion` (``" a<SEP>b"``: the first name as ``" " + name`` tokenized
alone, each later composite part as spelled right after ``<SEP>``, then EOS), i.e. the token
ids the tries hold. TRL 1.x tokenizes text pairs itself (prompt
alone, then ``prompt + chosen + eos_token`` as one string, the completion taken where the two
diverge), which can merge tokens across the prompt/name boundary and re-reads the EOS from
text; so the dataset given to the trainer is pre-tokenized (``prompt_ids``, ``chosen_ids``,
``rejected_ids``) and :class:`PretokenizedDPOTrainer` skips TRL's text preparation.

Output folder::

    DIR/rounds.json          state: baseline and per-round dev R@1/R@5, pairs, seconds
    DIR/round-N/pairs.jsonl  the round's pairs (inspectable); mining.json: counts by case
    DIR/round-N/model/       spaCy pipeline after round N (the latest round's is kept)
    DIR/model-best/          spaCy pipeline with the best dev Recall@1 (the input if no round
                             beats it)

A finished round is skipped on restart (the run resumes from the last round's model).
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from ._settings import with_overrides
from ..decoding.scoring import score_completions
from ..errors import Errors
from ..pipes import find_linker
from ..prompting import SEP_TOKEN, encode_completion, encode_prompt
from ..textio import read_json
from ..types import CorpusDoc
from .distributed import (barrier, ensure_process_group, is_main_process, shared_dev_recalls,
                          shared_mine)
from .examples import DevSet, build_dev_set
from .negatives import (MATCH_INTERSECT, MATCH_RULES, NUM_BEAMS, TOP_K, MiningStats,
                        PreferencePair, TrainMention, collect_mentions, read_pairs, write_pairs)
from .pipeline_io import DPO_META_KEY, LINKER, save_pipeline
from .sft import _as_docs, apply_lora, set_threads

logger = logging.getLogger(__name__)
PathLike = Union[str, Path]
STATE = "rounds.json"


@dataclass
class DPORunConfig:
    """Settings of :func:`train_dpo` (the CLI flags map onto these)."""

    rounds: int = 3
    chunk_size: Optional[int] = None  # training mentions mined per round (None: all / rounds)
    top_k: int = TOP_K  # beams labelled per mention (ANGEL's dpo_topk)
    num_beams: int = NUM_BEAMS  # beams decoded per mention while mining (ANGEL's num_beams)
    match: str = MATCH_INTERSECT  # a beam is correct: "intersect" (ANGEL's) or "exact" codes
    gold_fallback: bool = False
    beta: float = 0.1
    loss_type: str = "sigmoid"
    lr: Optional[float] = None  # None: 5e-6 (full fine-tuning) or 5e-5 (LoRA)
    epochs: float = 1.0  # passes over a round's pairs
    batch_size: int = 8  # pairs per device batch
    grad_accum: int = 1
    warmup: float = 0.1
    scheduler: str = "linear"
    max_grad_norm: float = 1.0
    max_pairs: Optional[int] = None  # per round (a seeded sample when more are mined)
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    dev_size: int = 200
    patience: int = 2  # rounds without a new best dev Recall@1 before stopping (0: never)
    max_minutes: Optional[float] = None
    seed: int = 0
    num_threads: Optional[int] = None
    logging_steps: int = 10
    progress: bool = True
    resume: bool = True

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 5e-5 if self.lora else 5e-6

    def check(self) -> None:
        problems = []
        if self.rounds < 1:
            problems.append("rounds must be >= 1")
        if self.chunk_size is not None and self.chunk_size < 1:
            problems.append("chunk_size must be >= 1")
        if self.top_k < 2:
            problems.append("top_k must be >= 2 (negatives come from the beams)")
        if self.num_beams < self.top_k:
            problems.append(f"num_beams ({self.num_beams}) must be >= top_k ({self.top_k}): "
                            "mining labels the top_k of num_beams beams")
        if self.match not in MATCH_RULES:
            problems.append(f"match must be one of {', '.join(MATCH_RULES)}, got '{self.match}'")
        if self.beta <= 0:
            problems.append("beta must be > 0")
        if self.batch_size < 1 or self.grad_accum < 1:
            problems.append("batch size and gradient accumulation must be >= 1")
        if problems:
            raise ValueError(Errors.E080.format(problem="; ".join(problems)))


# ----------------------------------------------------------------------------- tokenization


def pair_features(tokenizer, pair: PreferencePair, sep_id: Optional[int] = None,
                  prompt_ids: Optional[List[int]] = None) -> Dict[str, List[int]]:
    """``{"prompt_ids", "chosen_ids", "rejected_ids"}`` of a pair, tokenized as in SFT (and as
    the tries store the names): :func:`encode_prompt` and :func:`encode_completion`."""
    if sep_id is None:
        sep_id = int(tokenizer.convert_tokens_to_ids(SEP_TOKEN))
    return {"prompt_ids": list(prompt_ids) if prompt_ids is not None
            else encode_prompt(tokenizer, pair.prompt),
            "chosen_ids": encode_completion(tokenizer, pair.chosen_names, sep_id),
            "rejected_ids": encode_completion(tokenizer, pair.rejected_names, sep_id)}


def pairs_dataset(tokenizer, pairs: Sequence[PreferencePair]):
    """A ``datasets.Dataset`` of pre-tokenized pairs (see :func:`pair_features`)."""
    from datasets import Dataset

    sep_id = int(tokenizer.convert_tokens_to_ids(SEP_TOKEN))
    cache: Dict[str, List[int]] = {}
    rows = []
    for p in pairs:
        if p.prompt not in cache:
            cache[p.prompt] = encode_prompt(tokenizer, p.prompt)
        rows.append(pair_features(tokenizer, p, sep_id, cache[p.prompt]))
    return Dataset.from_list(rows)


def pair_logprobs(lm, rows: Sequence[Dict[str, List[int]]], batch_size: int = 16,
                  ) -> List[Tuple[float, float]]:
    """Summed log p(chosen | prompt) and log p(rejected | prompt) per pair under ``lm``
    (the linker's own teacher-forcing scorer; independent of TRL)."""
    was_training = lm.training
    lm.eval()
    out: List[Tuple[float, float]] = []
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            scores = score_completions(lm, [r["prompt_ids"] for r in chunk],
                                       [[r["chosen_ids"], r["rejected_ids"]] for r in chunk], 0)
            out.extend((c, r) for c, r in scores)
    finally:
        lm.train(was_training)
    return out


def pair_margins(lm, rows: Sequence[Dict[str, List[int]]], batch_size: int = 16) -> List[float]:
    """log p(chosen) − log p(rejected) per pair under ``lm``."""
    return [c - r for c, r in pair_logprobs(lm, rows, batch_size)]


# ----------------------------------------------------------------------------- trainer


def _make_trainer_class():
    from trl import DPOTrainer

    class PretokenizedDPOTrainer(DPOTrainer):
        """``DPOTrainer`` that takes datasets already holding ``prompt_ids``, ``chosen_ids``
        and ``rejected_ids`` as they are (TRL would re-tokenize text itself)."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            first = next(iter(dataset))
            if all(k in first for k in ("prompt_ids", "chosen_ids", "rejected_ids")):
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return PretokenizedDPOTrainer


def _unpatch(model) -> None:
    """Drop the fused-LM-head ``forward`` TRL sets on the model instance."""
    for m in (model, getattr(model, "base_model", None)):
        if m is not None and "forward" in vars(m):
            del m.forward


def _budget_callback(deadline: Optional[float]):
    from transformers import TrainerCallback

    class Budget(TrainerCallback):
        stopped = False

        def on_step_end(self, args, state, control, **kwargs):
            if deadline is not None and time.monotonic() >= deadline:
                self.stopped = True
                control.should_training_stop = True
            return control

    return Budget()


def dpo_round(lm, tokenizer, pairs: Sequence[PreferencePair], cfg: DPORunConfig,
              work_dir: PathLike, deadline: Optional[float] = None) -> Tuple[Any, Dict[str, Any]]:
    """One DPO pass over ``pairs``; the reference is ``lm`` as it is now. Returns the updated
    plain model (LoRA merged, TRL's forward patch removed) and the training numbers."""
    from trl import DPOConfig as TRLConfig

    dataset = pairs_dataset(tokenizer, pairs)
    lm.train()
    if cfg.lora:
        ref = None  # PEFT: the reference is the model with the adapter disabled
        policy = apply_lora(lm, cfg)
    else:
        ref = copy.deepcopy(lm).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        policy = lm
    args = TRLConfig(
        output_dir=str(work_dir), beta=cfg.beta, loss_type=[cfg.loss_type],
        learning_rate=cfg.learning_rate, num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, warmup_steps=cfg.warmup,
        lr_scheduler_type=cfg.scheduler, max_grad_norm=cfg.max_grad_norm,
        max_length=None, gradient_checkpointing=False, bf16=False,
        use_cpu=not torch.cuda.is_available(), save_strategy="no", report_to="none",
        logging_steps=cfg.logging_steps, disable_tqdm=not cfg.progress, seed=cfg.seed,
        data_seed=cfg.seed, dataloader_num_workers=0)
    budget = _budget_callback(deadline)
    # a copy: TRL sets a pad token on the tokenizer it is given, which would change the
    # pipeline's tokenizer fingerprint
    trainer = _make_trainer_class()(model=policy, ref_model=ref, args=args,
                                    train_dataset=dataset,
                                    processing_class=copy.deepcopy(tokenizer),
                                    callbacks=[budget])
    if not cfg.progress:  # quiet: no progress bar, no log dicts printed to stdout
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
    result = trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    model = trainer.model
    if cfg.lora:
        model = model.merge_and_unload()
    _unpatch(model)
    model.eval()
    info = {"steps": trainer.state.global_step, "train_loss": result.training_loss,
            "last_log": logs[-1] if logs else None, "stopped_by_budget": budget.stopped}
    del trainer, ref
    return model, info


# ----------------------------------------------------------------------------- evaluation


def dev_recall(engine, dev: DevSet, k: int = 5) -> Tuple[float, float]:
    """Dev Recall@1 and Recall@k of the engine in its own mode (one decoding pass; the
    Recall@1 is :func:`dev_recall_at_1`'s)."""
    r1, rk = shared_dev_recalls(engine, dev, (1, k))  # each process decodes its share
    return r1, rk


# ----------------------------------------------------------------------------- state


def _read_state(path: Path) -> Optional[Dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except (OSError, ValueError) as err:
        raise ValueError(Errors.E083.format(path=path, err=err)) from None


def _write_json(path: Path, data: Any) -> None:
    if not is_main_process():
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf8")
    os.replace(tmp, path)


def _chunks(mentions: Sequence[TrainMention], chunk_size: Optional[int], rounds: int,
            seed: int) -> List[List[TrainMention]]:
    """The training mentions in a seeded order, cut into chunks (one per round, cycling)."""
    order = list(mentions)
    random.Random(seed).shuffle(order)
    size = chunk_size or max(1, math.ceil(len(order) / rounds))
    return [order[i:i + size] for i in range(0, len(order), size)]


def _pipeline_dtype(path: Path) -> str:
    from spacy.util import load_config

    try:
        comp = load_config(path / "config.cfg", interpolate=False)["components"][LINKER]
        return str(comp.get("dtype", "auto"))
    except Exception:  # noqa: BLE001 - foreign config: default
        return "auto"


def _load(path: Path):
    """A pipeline with float32 weights (training precision)."""
    import spacy


    nlp = spacy.load(path, config={f"components.{LINKER}.dtype": "float32"})
    return nlp, find_linker(nlp)


# ----------------------------------------------------------------------------- main


def _start_state(cfg: DPORunConfig, pipeline: Path, out: Path) -> Dict[str, Any]:
    """The run's state: resumed from ``rounds.json`` or new (a new run clears the folder)."""
    state_path, best_dir = out / STATE, out / "model-best"
    state = _read_state(state_path) if cfg.resume else None
    if state is not None and state.get("pipeline") != str(pipeline):
        raise ValueError(Errors.E082.format(path=out, found=state.get("pipeline"),
                                            expected=pipeline))
    if state is None:
        state = {"pipeline": str(pipeline), "config": asdict(cfg), "baseline": None,
                 "rounds": [], "best_round": 0, "best_dev_recall@1": None, "stopped": None}
        # a fresh run: nothing of an earlier run in this folder is reused
        for stale in [*out.glob("round-*"), best_dir] if is_main_process() else []:
            if stale.is_dir():
                shutil.rmtree(stale)
        _write_json(state_path, state)
    return state


def _stop_reason(cfg: DPORunConfig, state: Dict[str, Any], deadline: Optional[float],
                 ) -> Optional[str]:
    if len(state["rounds"]) >= cfg.rounds:
        return "rounds"
    if cfg.patience > 0 and state["best_dev_recall@1"] is not None:
        if len(state["rounds"]) - state["best_round"] >= cfg.patience:
            return "patience"
    if deadline is not None and time.monotonic() >= deadline:
        return "budget"
    return None


def _mine_round(cfg: DPORunConfig, engine, chunk: Sequence[TrainMention], round_dir: Path,
                r: int, n_chunks: int) -> Tuple[List[PreferencePair], Dict[str, Any]]:
    """The round's pairs: read back after a restart, else mined by the engine's own beams."""
    pairs_path, mining_path = round_dir / "pairs.jsonl", round_dir / "mining.json"
    if pairs_path.is_file() and mining_path.is_file():  # mined before a restart
        return read_pairs(pairs_path), read_json(mining_path)
    pairs, stats = shared_mine(engine, chunk, k=cfg.top_k, num_beams=cfg.num_beams,
                               match=cfg.match, gold_fallback=cfg.gold_fallback)
    mined = len(pairs)
    if cfg.max_pairs and len(pairs) > cfg.max_pairs:
        keep = sorted(random.Random(cfg.seed + r).sample(range(len(pairs)), cfg.max_pairs))
        pairs = [pairs[i] for i in keep]
    if is_main_process():
        write_pairs(pairs, pairs_path)
    mining = dict(stats.to_dict(), mined_pairs=mined, kept_pairs=len(pairs),
                  chunk=(r - 1) % n_chunks, chunk_mentions=len(chunk))
    _write_json(mining_path, mining)
    return pairs, mining


def _train_round(cfg: DPORunConfig, linker, pairs: Sequence[PreferencePair], round_dir: Path,
                 deadline: Optional[float]) -> Dict[str, Any]:
    """One DPO round on ``pairs``; the linker decodes with the new weights afterwards."""
    rows = [pair_features(linker.tokenizer, p) for p in pairs]
    before = pair_margins(linker.lm, rows)
    lm, info = dpo_round(linker.lm, linker.tokenizer, pairs, cfg, round_dir / "trainer",
                         deadline)
    linker.set_weights(lm)
    after = pair_margins(lm, rows)
    shutil.rmtree(round_dir / "trainer", ignore_errors=True)
    return dict(info, pair_margin_before=sum(before) / len(before),
                pair_margin_after=sum(after) / len(after),
                pair_accuracy_before=sum(m > 0 for m in before) / len(before),
                pair_accuracy_after=sum(m > 0 for m in after) / len(after))


@dataclass
class _Run:
    """What every round of one :func:`train_dpo` call shares."""

    cfg: DPORunConfig
    out: Path
    pipeline: Path
    nlp: Any
    linker: Any
    chunks: List[List[TrainMention]]
    dev_set: Optional[DevSet]
    k_dev: int
    dtype: str
    meta: Dict[str, Any]
    deadline: Optional[float]

    @property
    def has_dev(self) -> bool:
        return bool(self.dev_set is not None and len(self.dev_set))

    def save(self, folder: Path, r: int, recall: Optional[float]) -> None:
        if is_main_process():
            save_pipeline(self.nlp, folder, dtype=self.dtype,
                          meta=dict(self.meta, round=r, **{"dev_recall@1": recall}))


def _run_round(run: _Run, state: Dict[str, Any]) -> Dict[str, Any]:
    """Mine, train, evaluate and save round ``len(rounds) + 1``; returns its record."""
    cfg, out, r = run.cfg, run.out, len(state["rounds"]) + 1
    t0 = time.perf_counter()
    round_dir = out / f"round-{r}"
    round_dir.mkdir(parents=True, exist_ok=True)
    chunk = run.chunks[(r - 1) % len(run.chunks)]
    pairs, mining = _mine_round(cfg, run.linker.engine, chunk, round_dir, r, len(run.chunks))
    t_mined = time.perf_counter()
    record: Dict[str, Any] = {"round": r, "pairs": len(pairs), "by_case": mining["by_case"],
                              "mining_seconds": round(t_mined - t0, 2)}
    prev_model = state["rounds"][-1]["model"] if state["rounds"] else None
    if pairs:
        record.update(_train_round(cfg, run.linker, pairs, round_dir, run.deadline))
        record["model"] = f"round-{r}/model"
    else:
        record.update(steps=0, stopped_by_budget=False, model=prev_model)
    t_trained = time.perf_counter()
    record["train_seconds"] = round(t_trained - t_mined, 2)
    if run.has_dev:
        r1, rk = dev_recall(run.linker.engine, run.dev_set, run.k_dev)
        record.update({"dev_recall@1": r1, "dev_recall@5": rk})
    record["eval_seconds"] = round(time.perf_counter() - t_trained, 2)
    if pairs:
        run.save(out / record["model"], r, record.get("dev_recall@1"))
    if record["model"] is None:  # nothing trained yet: the input pipeline
        record["model"] = os.path.relpath(run.pipeline, out.resolve())
    best_dir = out / "model-best"
    better = (not run.has_dev) or record["dev_recall@1"] > (state["best_dev_recall@1"] or -1.0)
    if better and (pairs or not best_dir.exists()):
        run.save(best_dir, r, record.get("dev_recall@1"))
    if better and run.has_dev:
        state["best_round"], state["best_dev_recall@1"] = r, record["dev_recall@1"]
    elif not run.has_dev:
        state["best_round"] = r
    record["seconds"] = round(time.perf_counter() - t0, 2)
    # the previous round's model is no longer needed for resuming
    if prev_model and prev_model != record["model"] and prev_model.startswith("round-"):
        record["_drop"] = prev_model
    return record


def _prepare_run(cfg: DPORunConfig, pipeline: Path, out: Path, state: Dict[str, Any], train,
                 dev, deadline: Optional[float], threads: int) -> _Run:
    """Load the pipeline the run continues from, its training mentions and dev set."""
    start_from = pipeline
    if state["rounds"]:
        start_from = out / state["rounds"][-1]["model"]
        if not (start_from / "config.cfg").is_file():
            raise ValueError(Errors.E085.format(path=out / STATE,
                                                round=state["rounds"][-1]["round"],
                                                model=start_from))
    nlp, linker = _load(start_from)
    train_docs, dev_docs = _as_docs(train), _as_docs(dev)
    collect_stats = MiningStats()
    mentions = collect_mentions(train_docs, linker, collect_stats, nlp=nlp)
    if not mentions:
        raise ValueError(Errors.E081.format(why=f"stats {collect_stats.to_dict()}"))
    # a resumed run keeps its chunks (unless a chunk size is given)
    chunk_size = cfg.chunk_size or (state.get("chunk_size") if state["rounds"] else None)
    chunks = _chunks(mentions, chunk_size, cfg.rounds, cfg.seed)
    dev_set = build_dev_set(dev_docs, linker, size=cfg.dev_size, seed=cfg.seed, nlp=nlp) \
        if dev_docs else None
    run = _Run(cfg, out, pipeline, nlp, linker, chunks, dev_set,
               max(1, min(5, linker.settings.n_best)), _pipeline_dtype(pipeline),
               {"stage": "dpo", "sft_pipeline": str(pipeline), "beta": cfg.beta}, deadline)
    state.update(train_mentions=len(mentions), chunks=len(chunks),
                 chunk_size=len(chunks[0]), dev_mentions=len(dev_set) if run.has_dev else 0,
                 threads=threads)
    return run


def train_dpo(pipeline: PathLike, train: Union[PathLike, Sequence[CorpusDoc]], output: PathLike,
              *, dev: Union[None, PathLike, Sequence[CorpusDoc]] = None,
              config: Optional[DPORunConfig] = None, recipe: Optional[Dict[str, Any]] = None,
              **overrides: Any) -> Dict[str, Any]:
    """Iterative DPO rounds on hard negatives mined by the pipeline's own beams.

    ``pipeline``: a spaCy pipeline folder holding ``syncabel_linker`` (e.g. SFT's
    ``model-best``). ``train`` / ``dev``: corpus paths or lists of :class:`CorpusDoc`.
    ``config`` / keyword overrides: :class:`DPORunConfig`. ``recipe``: the resolved DPO recipe
    (JSON), recorded in the saved pipelines' ``meta.json`` (``nlp.meta["syncabel_dpo_config"]``)
    beside the SFT recipe they inherit. Returns the state (also in ``output/rounds.json``).
    """
    from transformers import set_seed

    cfg = with_overrides(config, DPORunConfig, overrides, "train_dpo")
    ensure_process_group()
    t_start = time.monotonic()
    deadline = t_start + 60 * cfg.max_minutes if cfg.max_minutes else None
    pipeline = Path(pipeline).resolve()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    state_path, best_dir = out / STATE, out / "model-best"
    state = _start_state(cfg, pipeline, out)
    barrier()  # a fresh run's folder is cleared before any process reads it
    done = [r["round"] for r in state["rounds"]]
    if done and _stop_reason(cfg, state, deadline) is not None:
        state["resumed_rounds"] = done
        state["stopped"] = _stop_reason(cfg, state, deadline)
        return state
    threads = set_threads(cfg.num_threads)
    set_seed(cfg.seed)
    run = _prepare_run(cfg, pipeline, out, state, train, dev, deadline, threads)
    if recipe is not None:
        run.nlp.meta[DPO_META_KEY] = recipe
    if run.has_dev and state["baseline"] is None:
        t0 = time.perf_counter()
        r1, rk = dev_recall(run.linker.engine, run.dev_set, run.k_dev)
        state["baseline"] = {"dev_recall@1": r1, "dev_recall@5": rk,
                             "seconds": round(time.perf_counter() - t0, 2)}
        state["best_dev_recall@1"], state["best_round"] = r1, 0
        run.save(best_dir, 0, r1)
        _write_json(state_path, state)
    while _stop_reason(cfg, state, deadline) is None:
        record = _run_round(run, state)
        drop = record.pop("_drop", None)
        state["rounds"].append(record)
        _write_json(state_path, state)
        logger.info("DPO round %d: %s", record["round"],
                    {k: v for k, v in record.items() if k != "by_case"})
        if drop and is_main_process():
            shutil.rmtree(out / drop, ignore_errors=True)
        if record.get("stopped_by_budget"):
            break
    state["stopped"] = _stop_reason(cfg, state, deadline) or "budget"
    state["resumed_rounds"] = done
    state["model_best"] = str(best_dir.resolve()) if best_dir.exists() else None
    state["wall_seconds"] = round(time.monotonic() - t_start, 2)
    _write_json(state_path, state)
    barrier()
    return state


__all__ = ["DPORunConfig", "train_dpo", "dpo_round", "pair_features", "pairs_dataset",
           "pair_logprobs", "pair_margins", "dev_recall"]
