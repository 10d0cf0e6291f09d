"""The SFT trainer's callbacks: early stopping keeps its count across a resume."""
from transformers import TrainerControl, TrainerState, TrainingArguments

from spacy_syncabel.training.callbacks import EarlyStopping


def _evaluate(cb, state, value):
    control = cb.on_evaluate(ARGS, state, TrainerControl(), metrics={"eval_recall@1": value})
    if state.best_metric is None or value > state.best_metric:  # as the Trainer does after
        state.best_metric = value
    return control.should_training_stop


ARGS = TrainingArguments(output_dir="unused", report_to=[])


def test_early_stopping_counts_the_checkpoints_evaluations_after_a_resume():
    history = [{"loss": 2.0, "step": 10}, {"eval_recall@1": 0.50, "step": 10},
               {"eval_recall@1": 0.60, "step": 20}, {"eval_recall@1": 0.55, "step": 30},
               {"loss": 1.0, "step": 35}, {"eval_recall@1": 0.58, "step": 40}]
    state = TrainerState(log_history=list(history), best_metric=0.60)
    resumed = EarlyStopping(patience=3)
    resumed.on_train_begin(ARGS, state, TrainerControl())
    assert resumed.bad == 2  # 0.55 and 0.58 came after the best, 0.60
    assert _evaluate(resumed, state, 0.59) and resumed.stopped  # the third without a new best

    uninterrupted, state = EarlyStopping(patience=3), TrainerState(best_metric=None)
    stops = [_evaluate(uninterrupted, state, e["eval_recall@1"])
             for e in history + [{"eval_recall@1": 0.59}] if "eval_recall@1" in e]
    assert stops == [False, False, False, False, True]  # the same step as the resumed run


def test_early_stopping_starts_fresh_without_history_and_resets_on_a_new_best():
    cb, state = EarlyStopping(patience=2), TrainerState(best_metric=None)
    cb.on_train_begin(ARGS, state, TrainerControl())
    assert cb.bad == 0
    assert [_evaluate(cb, state, v) for v in (0.4, 0.3, 0.5, 0.45)] == [False, False, False, False]
    assert _evaluate(cb, state, 0.2)
