"""Training the linker's LM: examples (prompt + KB-name target), real/synthetic mixing, SFT.

The names below are imported on first use: the CLI's light commands (``ner-corpus``,
``assemble``, ``evaluate``) import modules of this package and should not pay for
transformers' Trainer and PEFT, which only ``sft`` needs.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

if TYPE_CHECKING:  # pragma: no cover
    from .examples import (DevSet, ExampleStats, NameSelector, TrainExample, build_dev_set,
                           build_examples, build_kb_name_examples, dev_recall_at_1)
    from .mixing import mix_examples
    from .sft import (CompletionCollator, ExampleDataset, TrainConfig, bf16_available,
                      bf16_speedup, last_checkpoint, load_base_model, save_pipeline,
                      train_linker)

# exported name -> the submodule that defines it
_EXPORTS = {
    **{name: "examples" for name in (
        "TrainExample", "ExampleStats", "NameSelector", "DevSet", "build_examples",
        "build_kb_name_examples", "build_dev_set", "dev_recall_at_1")},
    "mix_examples": "mixing",
    **{name: "sft" for name in (
        "TrainConfig", "train_linker", "CompletionCollator", "ExampleDataset",
        "load_base_model", "bf16_available", "bf16_speedup", "save_pipeline",
        "last_checkpoint")},
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:  # a submodule (``from .training import distributed``) or a typo
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = list(_EXPORTS)
