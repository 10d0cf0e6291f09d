"""Benchmark: our batched constrained beam search against transformers' generate().

Same model, same prompts (real SPACCC test mentions), same tries, beams 5, batch 32, the same
length penalty (default: ``BeamSearchConfig``'s, 1.0 as in generate). Reports top-1 agreement
and mentions/s of both, measured in one run.

    python benchmarks/bench_decoding.py --model smollm2 --n 300
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.decoding import BeamSearchConfig, TrieSet, beam_search
from spacy_syncabel.kb import read_file
from spacy_syncabel.models import ensure_sep_token, smollm2, tiny_llama
from spacy_syncabel.prompting import PromptTemplate, encode_prompt, render_prompt

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results"


def generate_topk(model, tok, prompts, tries, k, batch_size, length_penalty):
    """Reference: generate(prefix_allowed_tokens_fn=...) over left-padded batches."""
    out = []
    for b in range(0, len(prompts), batch_size):
        chunk, chunk_tries = prompts[b:b + batch_size], tries[b:b + batch_size]
        width = max(len(p) for p in chunk)
        ids = torch.full((len(chunk), width), tok.pad_token_id)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, p in enumerate(chunk):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1

        def allowed(batch_id, seq, chunk_tries=chunk_tries, width=width):
            trie = chunk_tries[batch_id]
            node = trie.walk(seq[width:].tolist())
            toks = trie.allowed(node).tolist() if node >= 0 else []
            return toks or [tok.eos_token_id]

        gen = model.generate(input_ids=ids, attention_mask=mask, num_beams=k,
                             num_return_sequences=1, prefix_allowed_tokens_fn=allowed,
                             length_penalty=length_penalty, max_new_tokens=48, do_sample=False,
                             early_stopping=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)
        for row in gen:
            seq = row[width:].tolist()
            out.append(seq[: seq.index(tok.eos_token_id) + 1] if tok.eos_token_id in seq else seq)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2", help="smollm2, smollm2:N, tiny or a model folder")
    ap.add_argument("--name", default=None, help="Name of the result file (default: from --model)")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--beams", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--length-penalty", type=float, default=BeamSearchConfig().length_penalty)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = read_file(DATA / "spaccc" / "kb_snomed_es_lite.tsv")
        docs = read_corpus(DATA / "spaccc" / "test_half.tsv")[: args.n]
    if Path(args.model).is_dir():  # a trained model folder (e.g. model-best/syncabel_linker/model)
        from spacy_syncabel.models import load_causal_lm

        model, tok = load_causal_lm(args.model, device="cpu", dtype="float32")
    elif args.model.startswith("smollm2"):
        layers = int(args.model.split(":")[1]) if ":" in args.model else None
        model, tok = smollm2(num_layers=layers, device="cpu", dtype="float32")(kb, None)
    else:
        model, tok = tiny_llama(hidden_size=256, num_layers=4, num_heads=4,
                                intermediate_size=512, vocab_size=4000)(kb, [d.text for d in docs])
    ensure_sep_token(model, tok)
    model.eval()
    tries = TrieSet.build(kb, tok)
    template = PromptTemplate(verb="es")
    prompts, mention_tries = [], []
    for d in docs:
        m = d.mentions[0]
        prompts.append(encode_prompt(tok, render_prompt(d.text, m.start, m.end, m.label,
                                                        template=template)))
        mention_tries.append(tries[m.label])
    # sort by length, as the component does, for both
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    prompts = [prompts[i] for i in order]
    mention_tries = [mention_tries[i] for i in order]
    cfg = BeamSearchConfig(num_beams=args.beams, n_best=1, length_penalty=args.length_penalty)

    t0 = time.perf_counter()
    ours = []
    for b in range(0, len(prompts), args.batch_size):
        ours += beam_search(model, prompts[b:b + args.batch_size],
                            mention_tries[b:b + args.batch_size], tok.eos_token_id,
                            tok.pad_token_id, cfg)
    t_ours = time.perf_counter() - t0
    print(f"ours: {len(prompts) / t_ours:.3f} mentions/s", flush=True)
    t0 = time.perf_counter()
    ref = generate_topk(model, tok, prompts, mention_tries, args.beams, args.batch_size,
                        args.length_penalty)
    t_ref = time.perf_counter() - t0
    same = sum(h[0].tokens == r for h, r in zip(ours, ref))
    result = {
        "model": args.model, "n_mentions": len(prompts), "num_beams": args.beams,
        "batch_size": args.batch_size, "length_penalty": args.length_penalty,
        "threads": torch.get_num_threads(),
        "top1_agreement": same / len(prompts),
        "ours_mentions_per_second": len(prompts) / t_ours,
        "generate_mentions_per_second": len(prompts) / t_ref,
        "speedup": t_ref / t_ours,
    }
    print(json.dumps(result, indent=2))
    OUT.mkdir(exist_ok=True)
    name = args.name or args.model.replace(":", "-")
    result["model"] = name
    (OUT / f"decoding_{name}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
