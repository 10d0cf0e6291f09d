"""Benchmark: our batched constrained beam search against transformers' generate().

Same model, same prompts (real SPACCC test mentions), same tries, beams 5, batch 32, the same
length penalty (default: ``BeamSearchConfig``'s, 1.0 as in generate). Reports top-1 agreement
and mentions/s of both, measured in one run, batch by batch in turn (wall and CPU time).

    python benchmarks/bench_decoding.py --model smollm2 --n 300
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
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


def load_model(spec: str, kb, texts):
    """A model folder (e.g. model-best/syncabel_linker/model), smollm2[:N] or a random
    256x4 tiny Llama whose BPE is trained on ``texts``; float32 on the CPU, with <SEP>."""
    if Path(spec).is_dir():
        from spacy_syncabel.models import load_causal_lm

        model, tok = load_causal_lm(spec, device="cpu", dtype="float32")
    elif spec.startswith("smollm2"):
        layers = int(spec.split(":")[1]) if ":" in spec else None
        model, tok = smollm2(num_layers=layers, device="cpu", dtype="float32")(kb, None)
    else:
        model, tok = tiny_llama(hidden_size=256, num_layers=4, num_heads=4,
                                intermediate_size=512, vocab_size=4000)(kb, texts)
    ensure_sep_token(model, tok)
    return model, tok


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


def profile_ours(model, tok, prompts, tries, cfg, out_path: Path) -> dict:
    """Where our search spends its time on one batch: cProfile's own time per operation,
    grouped into prefill, per-step model time (matmuls, attention, KV cache copies, the rest)
    and the search's own work (candidate gathering and ranking)."""
    calls = []
    forward = model.forward

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        out = forward(*args, **kwargs)
        calls.append((kwargs["input_ids"].shape[0], time.perf_counter() - t0))
        return out

    model.forward = timed
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    try:
        beam_search(model, prompts, tries, tok.eos_token_id, tok.pad_token_id, cfg)
    finally:
        prof.disable()
        model.forward = forward
    total = time.perf_counter() - t0
    own = {}
    for (_, _, fn), stat in pstats.Stats(prof).stats.items():
        own[fn] = own.get(fn, 0.0) + stat[2]  # tottime
    pick = lambda *names: sum(v for k, v in own.items() if any(n in k for n in names))  # noqa
    prefill = calls[0][1]
    steps = sum(t for _, t in calls[1:])
    result = {
        "n_mentions": len(prompts), "seconds": total, "prefill_seconds": prefill,
        "decoding_steps": len(calls) - 1, "step_forward_seconds": steps,
        "rows_per_step": [r for r, _ in calls[1:]],
        "seconds_per_step": [round(t, 3) for _, t in calls[1:]],
        "search_own_seconds": total - prefill - steps,
        "linear_seconds (prefill + steps)": pick("_nn.linear"),
        "attention_seconds (prefill + steps)": pick("scaled_dot_product_attention"),
        "kv_cache_copies_seconds": pick("index_select", "built-in method torch.cat"),
        "logsumexp_seconds": pick("logsumexp"),
    }
    out_path.write_text(json.dumps(result, indent=2))
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2", help="smollm2, smollm2:N, tiny or a model folder")
    ap.add_argument("--name", default=None, help="Name of the result file (default: from --model)")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--beams", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32, help="Mentions searched at once")
    ap.add_argument("--chunk", type=int, default=100, help="Mentions per interleaved turn")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--length-penalty", type=float, default=BeamSearchConfig().length_penalty)
    ap.add_argument("--profile", action="store_true",
                    help="Only profile our search on one batch of median-length prompts "
                         "(profile_decoding_*.json)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = read_file(DATA / "spaccc" / "kb_snomed_es_lite.tsv")
        docs = read_corpus(DATA / "spaccc" / "test_half.tsv")[: args.n]
    model, tok = load_model(args.model, kb, [d.text for d in docs])
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
    name = args.name or args.model.replace(":", "-")
    OUT.mkdir(exist_ok=True)
    if args.profile:
        n = args.batch_size
        lo = max(0, len(prompts) // 2 - n // 2)  # a batch of median-length prompts
        print(json.dumps(profile_ours(model, tok, prompts[lo:lo + n], mention_tries[lo:lo + n], cfg,
                                      OUT / f"profile_decoding_{name}.json"), indent=2))
        return

    # interleaved chunk by chunk (the order alternating), so that a change of the machine's
    # load weighs on both alike; wall and CPU time of each. A chunk holds --chunk mentions:
    # ours searches at most --batch-size of them at once, the next joining as others finish
    # (continuous batching); generate() takes them in batches of --batch-size.
    ours, ref = [], []
    wall = {"ours": 0.0, "generate": 0.0}
    cpu = {"ours": 0.0, "generate": 0.0}
    for i, b in enumerate(range(0, len(prompts), args.chunk)):
        chunk, chunk_tries = prompts[b:b + args.chunk], mention_tries[b:b + args.chunk]
        runs = [("ours", lambda: beam_search(model, chunk, chunk_tries, tok.eos_token_id,
                                             tok.pad_token_id, cfg, batch_size=args.batch_size)),
                ("generate", lambda: generate_topk(model, tok, chunk, chunk_tries, args.beams,
                                                   args.batch_size, args.length_penalty))]
        for which, run in (runs if i % 2 == 0 else runs[::-1]):
            w0, c0 = time.perf_counter(), time.process_time()
            out = run()
            wall[which] += time.perf_counter() - w0
            cpu[which] += time.process_time() - c0
            (ours if which == "ours" else ref).extend(out)
        print(f"{b + len(chunk)}/{len(prompts)}: wall speed-up "
              f"{wall['generate'] / wall['ours']:.2f}x", flush=True)
    t_ours, t_ref = wall["ours"], wall["generate"]
    same = sum(h[0].tokens == r for h, r in zip(ours, ref))
    result = {
        "model": args.model, "n_mentions": len(prompts), "num_beams": args.beams,
        "batch_size": args.batch_size, "chunk": args.chunk, "length_penalty": args.length_penalty,
        "threads": torch.get_num_threads(),
        "top1_agreement": same / len(prompts),
        "ours_mentions_per_second": len(prompts) / t_ours,
        "generate_mentions_per_second": len(prompts) / t_ref,
        "speedup": t_ref / t_ours,
        "cpu_seconds": cpu, "cpu_speedup": cpu["generate"] / cpu["ours"],
    }
    print(json.dumps(result, indent=2))
    result["model"] = name
    (OUT / f"decoding_{name}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
