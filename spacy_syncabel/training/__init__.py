"""Training the linker's LM: examples (prompt + KB-name target), real/synthetic mixing, SFT.

The names below are imported on first use: the CLI's light commands (``ner-corpus``,
``assemble``, ``evaluate``) import modules of this package and should not pay for
transformers' Trainer and PEFT, which only ``sft`` needs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
