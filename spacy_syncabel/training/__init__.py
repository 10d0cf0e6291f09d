"""Training the linker's LM: examples (prompt + KB-name target), real/synthetic mixing, SFT."""
from .examples import (DevSet, ExampleStats, NameSelector, TrainExample, build_dev_set,
                       build_examples, build_kb_name_examples, dev_recall_at_1)
from .mixing import mix_examples
from .sft import (CompletionCollator, ExampleDataset, TrainConfig, bf16_available, bf16_speedup,
                  last_checkpoint, load_base_model, save_pipeline, train_linker)

__all__ = [
    "TrainExample", "ExampleStats", "NameSelector", "DevSet", "build_examples",
    "build_kb_name_examples", "build_dev_set", "dev_recall_at_1", "mix_examples",
    "TrainConfig", "train_linker", "CompletionCollator", "ExampleDataset", "load_base_model",
    "bf16_available", "bf16_speedup", "save_pipeline", "last_checkpoint",
]
