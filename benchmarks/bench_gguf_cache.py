"""SmolLM2.v1 load time: first load (GGUF conversion into the cache) against a cached load.

Both loads run in this process on an empty temporary cache (or --cache), on CPU; the logits
of a few prompts are compared between them. Writes benchmarks/results/gguf_cache.json.

    python benchmarks/bench_gguf_cache.py [--num-layers N] [--cache DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from spacy_syncabel import models as M

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-layers", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gguf_cache.json")
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.mkdtemp(prefix="syncabel-cache-"))
    texts = ["fiebre y dolor de cabeza", "The patient presented with fever."]

    def timed_load():
        start = time.perf_counter()
        model, tok = M.smollm2(num_layers=args.num_layers, cache_dir=str(cache), device="cpu",
                               dtype="float32")(None, None)
        seconds = time.perf_counter() - start
        batch = tok(texts, return_tensors="pt", padding=True)
        with torch.no_grad():
            return seconds, model(**batch).logits

    first_s, first = timed_load()
    second_s, second = timed_load()
    result = {"num_layers": args.num_layers, "threads": torch.get_num_threads(),
              "first_load_s": round(first_s, 2), "cached_load_s": round(second_s, 2),
              "speedup": round(first_s / second_s, 1), "identical_logits": bool(torch.equal(first, second)),
              "cache_folder": str(M.gguf_cache_folder(M.smollm2_gguf_path(), M.SMOLLM2_CACHE_NAME,
                                                      args.num_layers, cache).name)}
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
