"""Supervised fine-tuning of the linker's causal LM with transformers' ``Trainer``.

Loss on the completion only (the collator right-pads and the prompt is -100 already),
optional LoRA (merged into the base weights before saving), periodic dev Recall@1 by the
component's own constrained decoding, ``DIR/model-best`` kept by dev Recall@1, early stopping,
resumable checkpoints in ``DIR/checkpoints`` and a wall-clock budget. Plain ``Trainer`` usage,
so ``accelerate launch`` works.

Output folder::

    DIR/model-best/          spaCy pipeline (spacy.load), best dev Recall@1
    DIR/model-last/          spaCy pipeline, the weights at the end of training
    DIR/checkpoints/         Trainer checkpoints (resume is automatic)
    DIR/training_log.jsonl   one JSON object per log / evaluation
    DIR/training_summary.json
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from ._settings import with_overrides
from ..corpus import read_corpus
from ..errors import Errors, Warnings
from ..kb import ConceptKB, read_file
from ..models import load_causal_lm, smollm2, tiny_llama, tokenizer_fingerprint
from ..prompting import SEP_TOKEN
from ..textio import read_json
from ..types import CorpusDoc
from .calibration import calibrate_pipeline
from .distributed import (barrier, dev_decoding_possible, final_model, is_main_process,
                          is_multi_process, merged_copy, shared_dev_recall)
from .examples import (COMPOSITE_MIN_SHARE, IGNORE_INDEX, DevSet, NameSelector, TrainExample,
                       build_dev_set, build_examples, composite_aliases, composite_gold,
                       mention_aliases)
from .mixing import mix_examples
from .callbacks import make_callbacks
from .pipeline_io import LINKER, copy_pipeline, save_pipeline
from .probability import calibrate_pipeline_probability
from .ranking import RankCollator, build_rank_examples, rank_loss

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
_CKPT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainConfig:
    """Settings of :func:`train_linker` (the CLI flags map onto these)."""

    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs
    lr: float = 5e-4
    batch_size: int = 16
    grad_accum: int = 1
    warmup: float = 0.05  # ratio (< 1) or steps
    scheduler: str = "cosine"  # or linear, constant_with_warmup...
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    bf16: Union[bool, str] = "auto"  # auto: CUDA bf16, or a CPU where a quick benchmark says faster
    eval_steps: int = 200
    save_steps: int = 200
    save_total_limit: int = 2
    logging_steps: int = 10
    dev_size: int = 200
    patience: int = 0  # evaluations without improvement before stopping (0: never)
    max_minutes: Optional[float] = None
    seed: int = 0
    top_k_targets: int = 1
    kb_name_examples: bool = False
    # > 0: candidate-ranking fine-tuning (training/ranking.py) against the mention's top-k
    # TF-IDF names, scored as the linker's rerank mode scores them
    rank_candidates: int = 0
    rank_weight: float = 1.0
    # index the training mentions as aliases of their target names for candidate retrieval
    # (saved with the pipeline); the ranking examples are built before, from KB names only
    train_aliases: bool = False
    # after training, pick the TF-IDF prior's weight for candidate reranking on the dev set
    # (training/calibration.py; candidate mode only) and switch the saved pipelines to it
    calibrate: bool = False
    calibration_size: int = 0  # dev mentions used (0: all)
    # with calibrate: the NIL threshold's dev precision (None: no NIL threshold)
    target_precision: Optional[float] = None
    mix_mode: str = "upsample"
    mix_weights: Tuple[float, float] = (1.0, 1.0)
    max_train: Optional[int] = None  # first N training examples of the real corpus
    num_threads: Optional[int] = None
    progress: bool = True
    resume: bool = True

    def check(self) -> None:
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError(Errors.E065.format(problem="batch size and gradient accumulation "
                                                        "must be >= 1"))
        if self.eval_steps < 1 or self.save_steps < 1:
            raise ValueError(Errors.E065.format(problem="eval_steps and save_steps must be >= 1"))
        if self.top_k_targets < 1:
            raise ValueError(Errors.E065.format(problem="top_k_targets must be >= 1"))
        if self.rank_candidates < 0 or self.rank_weight < 0:
            raise ValueError(Errors.E065.format(problem="rank_candidates and rank_weight "
                                                        "must be >= 0"))


# ----------------------------------------------------------------------------- data


class ExampleDataset(torch.utils.data.Dataset):
    """Training examples as ``{"input_ids", "labels"}`` dicts (lists of ints)."""

    def __init__(self, examples: Sequence[TrainExample]) -> None:
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Dict[str, List[int]]:
        return self.examples[i].features()


class CompletionCollator:
    """Right-pads a batch: ``input_ids`` with the pad id, ``labels`` with -100 (so padding
    and prompt tokens carry no loss), and builds the attention mask."""

    def __init__(self, pad_id: int, max_length: Optional[int] = None) -> None:
        self.pad_id = int(pad_id)
        self.max_length = max_length

    def __call__(self, features: List[Dict[str, List[int]]]) -> Dict[str, torch.Tensor]:
        seqs = [(list(f["input_ids"]), list(f["labels"])) for f in features]
        if self.max_length:
            seqs = [(i[-self.max_length:], l[-self.max_length:]) for i, l in seqs]
        width = max(len(i) for i, _ in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, (i, l) in enumerate(seqs):
            ids[row, :len(i)] = torch.tensor(i, dtype=torch.long)
            labels[row, :len(l)] = torch.tensor(l, dtype=torch.long)
            mask[row, :len(i)] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


# ----------------------------------------------------------------------------- models


def load_base_model(spec: str, kb=None, texts: Optional[Sequence[str]] = None, seed: int = 0):
    """``(model, tokenizer)`` in float32 on CPU for a base-model spec.

    ``smollm2`` / ``smollm2:N`` (first N layers), ``tiny`` / ``tiny:HIDDEN,LAYERS`` (random
    TinyLlama, BPE trained on the KB names and ``texts``), else a local folder or Hub id.
    """
    spec = str(spec).strip()
    head, _, arg = spec.partition(":")
    if head == "smollm2" and not os.path.isdir(spec):
        n = int(arg) if arg else None
        return smollm2(num_layers=n, dtype="float32", device="cpu")(kb, texts)
    if head == "tiny" and not os.path.isdir(spec):
        hidden, layers = 256, 4
        if arg:
            try:
                hidden, layers = (int(x) for x in arg.split(","))
            except ValueError:
                raise ValueError(Errors.E062.format(spec=spec)) from None
        heads = max(1, hidden // 64)
        inter = int(round(hidden * 8 / 3 / 32)) * 32 or hidden * 2
        return tiny_llama(hidden_size=hidden, num_layers=layers, num_heads=heads,
                          intermediate_size=inter, vocab_size=4000, seed=seed)(kb, texts)
    if not spec:
        raise ValueError(Errors.E062.format(spec=spec))
    return load_causal_lm(spec, dtype="float32", device="cpu")


def bf16_available() -> bool:
    """CUDA with bf16, or a CPU with native bf16 instructions (AVX512-BF16 or AMX)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # noqa: BLE001 - capability probes are private API
            pass
    return False


def bf16_speedup(model, batch: Dict[str, torch.Tensor], steps: int = 3) -> float:
    """Time of a forward+backward step in float32 divided by the time under bf16 autocast
    (CPU). > 1 means bf16 is faster. Gradients are cleared afterwards."""
    def run(use_bf16: bool) -> float:
        best = float("inf")
        for i in range(steps + 1):
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                out = model(**batch)
            out.loss.backward()
            dt = time.perf_counter() - t0
            if i:  # first is warm-up
                best = min(best, dt)
        model.zero_grad(set_to_none=True)
        return best

    was_training = model.training
    model.train()
    try:
        return run(False) / run(True)
    finally:
        model.train(was_training)


def _resolve_bf16(setting: Union[bool, str], model, batch) -> Tuple[bool, Optional[float]]:
    if isinstance(setting, str) and setting.lower() == "auto":
        if not bf16_available():
            return False, None
        if torch.cuda.is_available():
            return True, None
        if is_multi_process():  # each process would time it and could decide otherwise
            return False, None
        speedup = bf16_speedup(model, batch)
        return speedup > 1.1, speedup
    if isinstance(setting, str):
        return setting.lower() in ("1", "true", "yes", "on"), None
    return bool(setting), None


def apply_lora(model, cfg: TrainConfig, sep_id: Optional[int] = None):
    """Wrap ``model`` with LoRA adapters on all linear layers (the <SEP> embedding row is
    trained too, since the token is new)."""
    from peft import LoraConfig, get_peft_model

    kwargs: Dict[str, Any] = dict(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                  lora_dropout=cfg.lora_dropout, target_modules="all-linear",
                                  task_type="CAUSAL_LM")
    if sep_id is not None:
        kwargs["trainable_token_indices"] = {"embed_tokens": [int(sep_id)]}
    return get_peft_model(model, LoraConfig(**kwargs))


# ----------------------------------------------------------------------------- checkpoints


def _is_complete(ckpt: Path) -> bool:
    return (ckpt / "trainer_state.json").is_file() and (
        any(ckpt.glob("*.safetensors")) or any(ckpt.glob("*.bin"))
        or any(ckpt.glob("pytorch_model_fsdp_*")) or any(ckpt.glob("global_step*")))


def last_checkpoint(folder: PathLike, clean: bool = True) -> Optional[Path]:
    """The newest complete ``checkpoint-N`` of ``folder``; newer incomplete ones (a process
    killed while writing) are removed with W062 when ``clean``."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted(((int(m.group(1)), p) for p in folder.iterdir()
                    if p.is_dir() and (m := _CKPT.match(p.name))), reverse=True)
    for _, path in found:
        if _is_complete(path):
            return path
        if clean:
            warnings.warn(Warnings.W062.format(path=path))
            shutil.rmtree(path, ignore_errors=True)
    return None


# ----------------------------------------------------------------------------- trainer


def _make_trainer_class():
    from transformers import Trainer

    class LinkerTrainer(Trainer):
        """``Trainer`` whose evaluation is the linker's dev Recall@1 by constrained decoding;
        batches of :class:`~spacy_syncabel.training.ranking.RankExample` get the
        candidate-ranking loss."""

        def __init__(self, *args, linker=None, dev: Optional[DevSet] = None,
                     on_new_best=None, rank_weight: float = 1.0, **kwargs):
            super().__init__(*args, **kwargs)
            self.linker = linker
            self.dev = dev
            self.on_new_best = on_new_best
            self.rank_weight = rank_weight
            self.overhead_time = 0.0  # evaluation + checkpointing, excluded from examples/s
            self.examples_seen = 0
            self.tokens_seen = 0

        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            if "rank_batch" in inputs:
                batch = inputs["rank_batch"]
                if model.training:
                    self.examples_seen += len(batch)
                    self.tokens_seen += sum(len(ex.prompt_ids) + sum(map(len, ex.completions))
                                            for ex in batch)
                tok = self.processing_class
                pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
                out = rank_loss(model, batch, pad, prior_weight=self.linker.settings.prior_weight,
                                rank_weight=self.rank_weight)
                return (out["loss"], out) if return_outputs else out["loss"]
            if model.training:
                self.examples_seen += int(inputs["input_ids"].shape[0])
                self.tokens_seen += int(inputs["attention_mask"].sum())
            return super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            t0 = time.perf_counter()
            model = self.model
            was_training = model.training
            model.eval()
            try:
                recall = (shared_dev_recall(self.linker.engine.with_lm(model), self.dev,
                                            self.args.device) if self.dev else 0.0)
            finally:
                model.train(was_training)
            metrics = {f"{metric_key_prefix}_recall@1": recall,
                       f"{metric_key_prefix}_mentions": len(self.dev) if self.dev else 0,
                       f"{metric_key_prefix}_runtime": round(time.perf_counter() - t0, 3)}
            best = self.state.best_metric
            if self.on_new_best is not None and (best is None or recall > best):
                self.on_new_best(self, recall)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state,
                                                             self.control, metrics)
            self.overhead_time += time.perf_counter() - t0
            return metrics

        def _save_checkpoint(self, model, trial):
            t0 = time.perf_counter()
            super()._save_checkpoint(model, trial)
            self.overhead_time += time.perf_counter() - t0

    return LinkerTrainer




# ----------------------------------------------------------------------------- saving


def _read_best(path: Path) -> Optional[float]:
    try:
        return float(read_json(path / "training.json", root=path, kind="json")["dev_recall@1"])
    except Exception:  # noqa: BLE001 - absent or foreign folder
        return None


# ----------------------------------------------------------------------------- main


def _as_docs(corpus: Union[None, PathLike, Sequence[CorpusDoc]]) -> List[CorpusDoc]:
    if corpus is None:
        return []
    if isinstance(corpus, (str, Path)):
        return read_corpus(corpus)
    return list(corpus)


def set_threads(num_threads: Optional[int] = None) -> int:
    """One intra-op thread per available core, shared among the local processes, and no
    more threads than cores left idle by other processes (1-minute load average): OpenMP
    threads that wait on a descheduled sibling make an oversubscribed CPU several times
    slower than a single thread (measured: 2 threads 6x slower than 1 at load 6 on 2 cores).
    """
    if num_threads is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        num_threads = max(1, cores // max(1, local))
        try:
            idle = cores - int(os.getloadavg()[0])
        except OSError:  # pragma: no cover
            idle = cores
        num_threads = max(1, min(num_threads, idle))
    torch.set_num_threads(num_threads)
    return num_threads


@dataclass
class _Prepared:
    """What a training run is built from (see :func:`_prepare`)."""

    nlp: Any
    linker: Any
    lm: Any
    real: List[TrainExample]
    syn: List[TrainExample]
    real_stats: Any
    syn_stats: Any
    mixed: List[TrainExample]
    dev_docs: List[CorpusDoc]
    dev_set: Optional[DevSet]
    dataset: Any
    collator: Any
    use_bf16: bool
    bf16_gain: Optional[float]

    @property
    def has_dev(self) -> bool:
        return bool(self.dev_set is not None and len(self.dev_set))


def _load_kb(kb: Union[PathLike, Any], languages: Optional[Sequence[str]] = None):
    if isinstance(kb, ConceptKB):
        return kb
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the KB report is the KB loader's business
        return read_file(Path(kb), languages=list(languages) if languages else None)


def resolve_composite(linker_config: Optional[Dict[str, Any]], train_docs: Sequence[CorpusDoc],
                      ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(linker_config, info)``: ``composite`` decided from the training corpus when the
    config leaves it unset (None): on when at least ``COMPOSITE_MIN_SHARE`` (1%) of its coded
    gold mentions are composite; ``info`` says what was decided and why."""
    config = dict(linker_config or {})
    gold = composite_gold(train_docs)
    info: Dict[str, Any] = {"gold": gold.to_dict(), "min_share": COMPOSITE_MIN_SHARE}
    if config.get("composite") is None:
        config["composite"] = gold.wants_composite()
        info["decided_by"] = "training corpus"
        logger.info("composite mentions %s: %d of %d coded training mentions are composite "
                    "(%.2f%%; on from %.0f%%)", "on" if config["composite"] else "off",
                    gold.composite, gold.coded, 100 * gold.share, 100 * COMPOSITE_MIN_SHARE)
    else:
        info["decided_by"] = "setting"
    info["composite"] = bool(config["composite"])
    return config, info


def _build_linker(kb_obj, base_model: str, lang: str, label_map, linker_config, texts,
                  seed: int):
    """A blank pipeline whose linker holds the base model (float32; bf16 is autocast)."""
    import spacy

    lm, tok = load_base_model(base_model, kb_obj, texts, seed=seed)
    nlp = spacy.blank(lang)
    # training and inference see the same sentences: the segmenter is saved with the pipeline
    nlp.add_pipe("syncabel_sentencizer")
    comp_cfg: Dict[str, Any] = {"label_map": dict(label_map or {}), "device": "auto"}
    comp_cfg.update(linker_config or {})
    comp_cfg["dtype"] = "float32"
    linker = nlp.add_pipe(LINKER, config=comp_cfg)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\[W103\]")  # it is being fine-tuned now
        linker.set_model(lm, tok, kb_obj)
    return nlp, linker


def _prepare(cfg: TrainConfig, kb_obj, train_docs, dev_docs, syn_docs, base_model: str,
             lang: str, label_map, linker_config) -> _Prepared:
    """Model, component, examples (real + synthetic, mixed), dev set, dataset and precision."""
    nlp, linker = _build_linker(kb_obj, base_model, lang, label_map, linker_config,
                                [d.text for d in train_docs[:2000]], cfg.seed)
    lm, tok = linker.lm, linker.tokenizer
    selector = NameSelector(kb_obj, linker.candidate_index)
    real, real_stats = build_examples(train_docs, linker, top_k_targets=cfg.top_k_targets,
                                      kb_name_examples=cfg.kb_name_examples, source="real",
                                      selector=selector, max_examples=cfg.max_train, nlp=nlp)
    syn, syn_stats = ([], None)
    if syn_docs:
        syn, syn_stats = build_examples(syn_docs, linker, top_k_targets=cfg.top_k_targets,
                                        source="synthetic", selector=selector, nlp=nlp)
    mixed = mix_examples(real, syn, mode=cfg.mix_mode, weights=cfg.mix_weights, seed=cfg.seed)
    if not mixed:
        raise ValueError(Errors.E063.format(why=f"stats {real_stats.to_dict()}"))
    dev_set = build_dev_set(dev_docs, linker, size=cfg.dev_size, seed=cfg.seed, nlp=nlp) \
        if dev_docs and dev_decoding_possible() else None
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    collator = CompletionCollator(pad_id)
    dataset = ExampleDataset(mixed)
    # precision (probed on a plain SFT batch)
    probe = collator([dataset[i] for i in range(min(len(dataset), cfg.batch_size))])
    if cfg.rank_candidates > 0:
        dataset = ExampleDataset(build_rank_examples(mixed, linker, cfg.rank_candidates))
        collator = RankCollator()
    if cfg.train_aliases:
        linker.set_aliases(mention_aliases(real) + composite_aliases(
            ((ex.mention, ex.code, ex.group) for ex in real if ex.source != "kb_name"), kb_obj))
    lm.train()
    use_bf16, bf16_gain = _resolve_bf16(cfg.bf16, lm, probe)
    if cfg.lora:
        lm = apply_lora(lm, cfg, int(tok.convert_tokens_to_ids(SEP_TOKEN)))
        linker.set_weights(lm)
    lm.train()
    return _Prepared(nlp, linker, lm, real, syn, real_stats, syn_stats, mixed, dev_docs,
                     dev_set, dataset, collator, use_bf16, bf16_gain)


def _resume_point(ckpt_dir: Path, tok, resume: bool) -> Optional[Path]:
    """The newest checkpoint to resume from (E064 when its tokenizer differs)."""
    resume_from = last_checkpoint(ckpt_dir, clean=is_main_process()) if resume else None
    if resume_from is not None and (resume_from / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        found = tokenizer_fingerprint(AutoTokenizer.from_pretrained(str(resume_from)))
        expected = tokenizer_fingerprint(tok)
        if found != expected:
            raise ValueError(Errors.E064.format(path=resume_from, found=found[:12],
                                                expected=expected[:12]))
    return resume_from


def _training_arguments(cfg: TrainConfig, ckpt_dir: Path, has_dev: bool, use_bf16: bool):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(ckpt_dir), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps and cfg.max_steps > 0 else -1,
        lr_scheduler_type=cfg.scheduler, warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps, logging_first_step=True,
        eval_strategy="steps" if has_dev else "no", eval_steps=cfg.eval_steps,
        save_strategy="steps", save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        metric_for_best_model="recall@1" if has_dev else None, greater_is_better=True,
        bf16=use_bf16, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
        ddp_find_unused_parameters=False, report_to="none", seed=cfg.seed, data_seed=cfg.seed,
        train_sampling_strategy="group_by_length", disable_tqdm=not cfg.progress,
        remove_unused_columns=False,
    )


def _final_recall(trainer, has_dev: bool) -> Optional[float]:
    """Dev Recall@1 of the last step (evaluated now when the last step was not)."""
    if not has_dev:
        return None
    history = [h for h in trainer.state.log_history if "eval_recall@1" in h]
    if not history or history[-1].get("step") != trainer.state.global_step:
        return trainer.evaluate()["eval_recall@1"]
    return history[-1]["eval_recall@1"]


def _summary(out: Path, base_model: str, prep: _Prepared, trainer, result, budget, early,
             jsonl, resume_from, best: Optional[float], final: Optional[float], threads: int,
             t_start: float) -> Dict[str, Any]:
    args = trainer.args
    return {
        "output": str(out.resolve()), "base_model": base_model,
        "global_step": trainer.state.global_step,
        "resumed_from": str(resume_from) if resume_from else None,
        "stopped_by_budget": budget.stopped, "stopped_early": early.stopped,
        "train_examples": len(prep.mixed), "real_examples": len(prep.real),
        "synthetic_examples": len(prep.syn), "real_stats": prep.real_stats.to_dict(),
        "aliases": len(prep.linker.aliases),
        "synthetic_stats": prep.syn_stats.to_dict() if prep.syn_stats else None,
        "dev_mentions": len(prep.dev_set) if prep.dev_set is not None else 0,
        "best_dev_recall@1": best, "last_dev_recall@1": final,
        "bf16": prep.use_bf16, "bf16_cpu_speedup": prep.bf16_gain, "threads": threads,
        "train_loss": result.training_loss,
        "train_runtime_s": round(jsonl.train_time, 2),
        "examples_per_s": round(trainer.examples_seen * max(1, args.world_size)
                                / jsonl.train_time, 3) if jsonl.train_time > 0 else None,
        "wall_time_s": round(time.perf_counter() - t_start, 2),
    }


def _write_outputs(out: Path, prep: _Prepared, trainer, cfg: TrainConfig, summary, meta,
                   inference_dtype: str, log_path: Path, final_lm,
                   train_docs: Optional[Sequence[CorpusDoc]] = None,
                   kb_languages: Optional[Sequence[str]] = None) -> None:
    """model-last (and model-best without dev), calibration (the probability on the
    dev-masked view when ``train_docs`` are given), the summary; main process only."""
    best_dir, last_dir = out / "model-best", out / "model-last"
    save_pipeline(prep.nlp, last_dir, lm=final_lm, dtype=inference_dtype,
                  kb_languages=kb_languages, meta=dict(meta, step=trainer.state.global_step,
                            **{"dev_recall@1": summary["last_dev_recall@1"]}))
    if not best_dir.exists():  # no dev set: the last model is the best we know
        copy_pipeline(last_dir, best_dir)
    if cfg.calibrate and prep.has_dev and prep.linker.settings.uses_candidates:
        for key, folder in (("calibration_best", best_dir), ("calibration_last", last_dir)):
            cal = calibrate_pipeline(folder, prep.dev_docs, dev_size=cfg.calibration_size,
                                     seed=cfg.seed, train_docs=train_docs)
            summary[key] = {k: cal[k] for k in ("prior_weight", "recall@1", "dev_mentions")}
            summary[key].update({f"cascade_{k}": cal["cascade"][k]
                                 for k in ("on", "margin", "recall@1", "skipped")})
            # the probability is fitted on the scores of the settings just chosen
            prob = calibrate_pipeline_probability(folder, prep.dev_docs,
                                                  target_precision=cfg.target_precision,
                                                  train_docs=train_docs)
            summary[key].update({"nil_threshold": prob.nil_threshold,
                                 "probability_dev_ece": prob.fit.get("dev_ece")})
    summary["model_best"] = str(best_dir.resolve())
    summary["model_last"] = str(last_dir.resolve())
    (out / "training_summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf8")
    with log_path.open("a", encoding="utf8") as f:
        f.write(json.dumps(dict(event="train_end", **summary), ensure_ascii=False) + "\n")


def train_linker(
    kb: Union[PathLike, Any],
    train: Union[PathLike, Sequence[CorpusDoc]],
    output: PathLike,
    *,
    dev: Union[None, PathLike, Sequence[CorpusDoc]] = None,
    synthetic: Union[None, PathLike, Sequence[CorpusDoc]] = None,
    base_model: str = "tiny",
    lang: str = "es",
    label_map: Optional[Dict[str, Optional[str]]] = None,
    linker_config: Optional[Dict[str, Any]] = None,
    config: Optional[TrainConfig] = None,
    kb_languages: Optional[Sequence[str]] = None,
    recipe: Optional[Dict[str, Any]] = None,
    **overrides: Any,
) -> Dict[str, Any]:
    """Fine-tune a causal LM for ``syncabel_linker`` and write spaCy pipelines.

    ``kb``: a KB file (any format ``kb.read_file`` reads, ``kb_languages`` its languages:
    ``read_file``'s ``languages``) or a :class:`ConceptKB`. ``train``,
    ``dev``, ``synthetic``: corpus paths (any format ``read_corpus`` reads) or lists of
    :class:`CorpusDoc`. ``linker_config``: settings of the component (``mode``,
    ``candidates``, ``context_chars``, ``composite``, ``num_beams``...; see
    :class:`~spacy_syncabel.linking.LinkSettings`); ``composite`` missing or None: on when at
    least 1% of ``train``'s coded gold mentions are composite (:func:`resolve_composite`).
    ``config`` / keyword overrides: :class:`TrainConfig`. Resumes from ``output/checkpoints`` when a checkpoint exists.
    ``recipe``: the resolved training recipe (JSON), recorded in the saved pipelines'
    ``meta.json`` (``nlp.meta["syncabel_training_config"]``).
    Returns a summary (also written to ``output/training_summary.json``).
    """
    from transformers import set_seed

    cfg = with_overrides(config, TrainConfig, overrides, "train_linker")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir, log_path = out / "checkpoints", out / "training_log.jsonl"
    threads = set_threads(cfg.num_threads)
    set_seed(cfg.seed)
    t_start = time.perf_counter()
    inference_dtype = (linker_config or {}).get("dtype", "auto")
    train_docs = _as_docs(train)
    linker_config, composite_info = resolve_composite(linker_config, train_docs)
    prep = _prepare(cfg, _load_kb(kb, kb_languages), train_docs, _as_docs(dev), _as_docs(synthetic),
                    base_model, lang, label_map,
                    {k: v for k, v in linker_config.items() if k != "dtype"})
    if recipe is not None:
        from .pipeline_io import META_KEY

        prep.nlp.meta[META_KEY] = recipe
    resume_from = _resume_point(ckpt_dir, prep.linker.tokenizer, cfg.resume)
    args = _training_arguments(cfg, ckpt_dir, prep.has_dev, prep.use_bf16)
    best_dir = out / "model-best"
    meta = {"base_model": base_model, "lang": lang, "train_examples": len(prep.mixed),
            "lora": cfg.lora, "rank_candidates": cfg.rank_candidates}
    best_on_disk = _read_best(best_dir)

    def on_new_best(trainer, recall: float) -> None:
        nonlocal best_on_disk
        if best_on_disk is not None and recall <= best_on_disk:
            return
        best_on_disk = recall
        if trainer.is_world_process_zero():
            save_pipeline(prep.nlp, best_dir, lm=merged_copy(trainer.model),
                          dtype=inference_dtype, kb_languages=kb_languages,
                          meta=dict(meta, step=trainer.state.global_step,
                                    **{"dev_recall@1": recall}))

    trainer_ref: Dict[str, Any] = {"has_dev": prep.has_dev}
    budget, early, jsonl = make_callbacks(trainer_ref, cfg.max_minutes, cfg.patience, log_path)
    trainer = _make_trainer_class()(
        model=prep.lm, args=args, train_dataset=prep.dataset,
        eval_dataset=ExampleDataset(prep.mixed[:1]) if prep.has_dev else None,
        data_collator=prep.collator, processing_class=prep.linker.tokenizer,
        callbacks=[budget, early, jsonl], linker=prep.linker, dev=prep.dev_set,
        on_new_best=on_new_best if prep.has_dev else None, rank_weight=cfg.rank_weight)
    trainer_ref["trainer"] = trainer
    if resume_from is not None:
        logger.info("Resuming from %s", resume_from)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final_recall = _final_recall(trainer, prep.has_dev)
    summary = _summary(out, base_model, prep, trainer, result, budget, early, jsonl,
                       resume_from, best_on_disk, final_recall, threads, t_start)
    summary["composite"] = composite_info["composite"]
    summary["composite_gold"] = composite_info
    final_lm = final_model(trainer)  # every process: sharded weights are gathered
    if trainer.is_world_process_zero():
        _write_outputs(out, prep, trainer, cfg, summary, meta, inference_dtype, log_path,
                       final_lm, train_docs, kb_languages)
    barrier()  # the other processes return once the pipelines are written
    prep.linker.set_weights(trainer.model)
    return summary


__all__ = ["TrainConfig", "train_linker", "CompletionCollator", "ExampleDataset",
           "load_base_model", "apply_lora", "bf16_available", "bf16_speedup", "save_pipeline",
           "last_checkpoint", "set_threads", "resolve_composite"]
