"""The SFT trainer's callbacks: wall-clock budget, early stopping, the JSONL training log."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from transformers import TrainerCallback

from .distributed import any_rank


class BudgetCallback(TrainerCallback):
    """Stops cleanly (evaluate + save) once ``max_minutes`` of wall-clock time are used."""

    def __init__(self, max_minutes: Optional[float], trainer_ref: Dict[str, Any]) -> None:
        self.max_minutes, self.trainer_ref = max_minutes, trainer_ref
        self.start = time.monotonic()
        self.stopped = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.max_minutes is None or self.stopped:
            return control
        over = (time.monotonic() - self.start) / 60.0 >= self.max_minutes
        if any_rank(over, args.device):
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True
            control.should_evaluate = self.trainer_ref.get("has_dev", False)
        return control

class EarlyStopping(TrainerCallback):
    """Stops after ``patience`` evaluations without a new best dev Recall@1. A resumed run
    counts the evaluations the checkpoint's log already holds (the count survives a restart)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.bad = 0
        self.stopped = False

    def on_train_begin(self, args, state, control, **kwargs):
        """Replay the dev Recall@1 of ``state.log_history`` (restored from a checkpoint)."""
        best, self.bad = None, 0
        for entry in state.log_history or ():
            value = entry.get("eval_recall@1")
            if value is None:
                continue
            if best is None or value > best:
                best, self.bad = value, 0
            else:
                self.bad += 1
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get("eval_recall@1")
        if value is None or self.patience <= 0:
            return control
        if state.best_metric is None or value > state.best_metric:
            self.bad = 0
        else:
            self.bad += 1
            if self.bad >= self.patience:
                self.stopped = True
                control.should_training_stop = True
                control.should_save = True
        return control

class JsonlLog(TrainerCallback):
    """Appends every log (loss, lr, dev Recall@1) to ``training_log.jsonl`` with the
    training speed in examples/s (time spent evaluating and saving excluded)."""

    def __init__(self, trainer_ref: Dict[str, Any], log_path: Path) -> None:
        self.trainer_ref, self.log_path = trainer_ref, log_path
        self.t_last = time.perf_counter()
        self.overhead_last = 0.0
        self.seen_last = 0
        self.tokens_last = 0
        self.train_time = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        tr = self.trainer_ref["trainer"]
        self.t_last = time.perf_counter()
        self.overhead_last = tr.overhead_time
        self.seen_last, self.tokens_last = tr.examples_seen, tr.tokens_seen
        self._write({"event": "train_begin", "step": state.global_step,
                     "max_steps": state.max_steps, "time": time.time()}, state, args)

    def on_log(self, args, state, control, logs=None, **kwargs):
        tr = self.trainer_ref["trainer"]
        now = time.perf_counter()
        record = {"step": state.global_step, "epoch": state.epoch, "time": time.time()}
        record.update(logs or {})
        if "loss" in (logs or {}):
            spent = (now - self.t_last) - (tr.overhead_time - self.overhead_last)
            n = tr.examples_seen - self.seen_last
            ntok = tr.tokens_seen - self.tokens_last
            world = max(1, args.world_size)
            if spent > 0 and n:
                record["examples_per_s"] = round(world * n / spent, 3)
                record["tokens_per_s"] = round(world * ntok / spent, 1)
            self.train_time += max(spent, 0.0)
            self.t_last, self.overhead_last = now, tr.overhead_time
            self.seen_last, self.tokens_last = tr.examples_seen, tr.tokens_seen
        self._write(record, state, args)

    def on_train_end(self, args, state, control, **kwargs):
        tr = self.trainer_ref["trainer"]
        spent = (time.perf_counter() - self.t_last) - (tr.overhead_time - self.overhead_last)
        if tr.examples_seen > self.seen_last:
            self.train_time += max(spent, 0.0)
        self.t_last, self.overhead_last = time.perf_counter(), tr.overhead_time
        self.seen_last, self.tokens_last = tr.examples_seen, tr.tokens_seen

    def _write(self, record, state, args) -> None:
        if not state.is_world_process_zero:
            return
        with self.log_path.open("a", encoding="utf8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")



def make_callbacks(trainer_ref: Dict[str, Any], max_minutes: Optional[float], patience: int,
                   log_path: Path) -> Tuple[BudgetCallback, EarlyStopping, JsonlLog]:
    """The three callbacks of a run; ``trainer_ref["trainer"]`` is set once it exists."""
    return (BudgetCallback(max_minutes, trainer_ref), EarlyStopping(patience),
            JsonlLog(trainer_ref, log_path))


__all__ = ["BudgetCallback", "EarlyStopping", "JsonlLog", "make_callbacks"]
