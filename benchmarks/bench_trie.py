"""Benchmark: token tries + name index at ~100k and >= 1M names (time, memory, step cost).

KBs: ``100k`` = MEDIC + SPACCC-lite + eCIE-O-3.1 + QUAERO-lite (the real names in
``../shared/data``); ``1M`` = the KB written by ``benchmarks/build_big_kb.py`` (real vocabularies
plus variants; its ``stats.json`` says how many names are real). SmolLM2 tokenizer.

Every measurement runs in a fresh subprocess (resident sizes are RSS deltas after
``gc.collect()`` + ``malloc_trim``):

- ``build``: KB load (the name index: :class:`ConceptKB`), ``TrieSet.build`` wall and CPU time,
  resident size of both, save time and size on disk;
- ``load``: the KB (``kb.jsonl``) and the tries (``TrieSet.from_disk``, memory-mapped and read)
  loaded in a fresh process: time and resident size;
- ``steps``: the per-step constraint work of ``beam_search`` (``allowed`` + the vocabulary mask
  + ``step``) along the token paths of 300 sampled names, in the group view and the all-names
  trie, and the same lookups in a marisa-trie of token strings (side by side);
- ``decode``: ``beam_search`` (5 beams) with a small random Llama of SmolLM2's vocabulary on 32
  prompts: time per decoding step (one forward pass of the batch + constraint work).

    python benchmarks/build_big_kb.py --out /tmp/big_kb
    python benchmarks/bench_trie.py --big-kb /tmp/big_kb/kb.tsv
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results"
SMALL = ("medic/medic_06Jul2012.txt", "spaccc/kb_snomed_es_lite.tsv", "cantemist/cie_o3.jsonl",
         "quaero/kb_umls_fr_lite.tsv")
GROUP = "Disease"  # a group of both KBs (MEDIC)


def _rss_mb() -> float:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def _load_kb(spec: str):
    from spacy_syncabel.kb import ConceptKB, read_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec == "small":
            entries = []
            for path in SMALL:
                kb = read_file(DATA / path)
                entries += [(c, n, g) for c, n, g in kb.entries()]
            return ConceptKB(entries, warn=False)
        if Path(spec).is_dir():
            return ConceptKB.from_disk(spec)
        return read_file(spec)


def child_build(spec: str, out: Path) -> Dict:
    from spacy_syncabel.decoding import TrieSet
    from spacy_syncabel.models import load_smollm2_tokenizer

    tok = load_smollm2_tokenizer()
    base = _rss_mb()
    t0 = time.perf_counter()
    kb = _load_kb(spec)
    kb_load = time.perf_counter() - t0
    after_kb = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    # the first trie only: composite mentions add an after-separator trie of about the same
    # size (benchmarks/bench_composite.py), which the figures here leave out
    tries = TrieSet.build(kb, tok)
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    after_tries = _rss_mb()
    t0 = time.perf_counter()
    tries.to_disk(out / "tries")
    save_s = time.perf_counter() - t0
    kb.to_disk(out / "kb")
    disk = sum(p.stat().st_size for p in (out / "tries").iterdir())
    return {"n_names": len(kb.name_ids()), "n_groups": len(kb.groups), "n_codes": len(kb),
            "n_nodes": tries[None].n_nodes, "n_group_sets": len(tries.mask_table),
            "collisions": tries.trie.collisions,
            "kb_load_seconds": kb_load, "kb_resident_mb": after_kb - base,
            "name_table_mb": len(kb.name_table.tobytes()) / 1e6,
            "build_seconds": build_s, "build_cpu_seconds": build_cpu,
            "tries_resident_mb": after_tries - after_kb, "tries_array_mb": tries.nbytes / 1e6,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
            "save_seconds": save_s, "tries_disk_mb": disk / 1e6}


def child_load(out: Path) -> Dict:
    from spacy_syncabel.decoding import TrieSet
    from spacy_syncabel.kb import ConceptKB
    from spacy_syncabel.models import load_smollm2_tokenizer

    tok = load_smollm2_tokenizer()
    base = _rss_mb()
    t0 = time.perf_counter()
    kb = ConceptKB.from_disk(out / "kb")
    kb_load = time.perf_counter() - t0
    after_kb = _rss_mb()
    fp = kb.fingerprint()
    res = {"kb_load_seconds": kb_load, "kb_resident_mb": after_kb - base}
    for mmap in (True, False):
        before = _rss_mb()
        t0 = time.perf_counter()
        tries = TrieSet.from_disk(out / "tries", tok, fp, mmap=mmap, names=kb.name_table)
        res["tries_share_kb_names"] = tries.names is kb.name_table
        key = "mmap" if mmap else "read"
        res[f"tries_load_seconds_{key}"] = time.perf_counter() - t0
        res[f"tries_resident_mb_{key}"] = _rss_mb() - before
        del tries
    return res


def _paths(tries, n: int, seed: int = 0) -> List[List[int]]:
    import numpy as np

    ids = tries.trie.names  # marisa: key ids are 0..len-1
    rng = np.random.default_rng(seed)
    with_leaf = np.nonzero(tries.name_leaf >= 0)[0]
    pick = rng.choice(with_leaf, size=min(n, len(with_leaf)), replace=False)
    return [tries.tokens_of(ids.restore_key(int(i))) + [tries.trie.eos_id] for i in pick]


def _step_seconds(trie, walks: List[List[int]], vocab: int) -> float:
    """Seconds per step of the constraint work beam_search does, along the token paths."""
    import numpy as np
    import torch

    n_steps = 0
    t0 = time.perf_counter()
    for p in walks:
        node = 0
        for tok in p:
            allowed = trie.allowed(node)  # as in beam_search's _mask_scores
            scores = torch.zeros((1, vocab))
            masked = torch.full_like(scores, float("-inf"))
            cols = torch.from_numpy(allowed.astype(np.int64))
            masked[0, cols] = scores[0, cols]
            node = trie.step(node, tok)
            n_steps += 1
    return (time.perf_counter() - t0) / max(n_steps, 1)


def _walks(trie, paths: List[List[int]]) -> List[List[int]]:
    return [p for p in paths if trie.name_of(p) is not None]


def child_steps(out: Path, n_names: int = 300, repeats: int = 3) -> Dict:
    import marisa_trie

    from spacy_syncabel.decoding import TrieSet

    tries = TrieSet.from_disk(out / "tries", mmap=False)
    vocab = int(tries.meta["vocab_size"])
    paths = _paths(tries, n_names)
    res: Dict = {}
    for label, trie in (("all_names", tries[None]), ("group_view", tries[GROUP])):
        walks = _walks(trie, paths)
        best = min(_step_seconds(trie, walks, vocab) for _ in range(repeats))
        res[f"step_us_{label}"] = best * 1e6
        res[f"root_fanout_{label}"] = int(len(trie.allowed(0)))
    # the same lookups (allowed next tokens, then step) in a marisa-trie of token strings
    t0 = time.perf_counter()
    keys = _all_token_strings(tries)
    mt = marisa_trie.Trie(keys)
    res["marisa_token_trie_build_seconds"] = time.perf_counter() - t0
    res["marisa_token_trie_mb"] = len(mt.tobytes()) / 1e6
    del keys
    t0 = time.perf_counter()
    for p in paths[:50]:
        prefix = chr(0x100 + p[0])
        for tok in p[1:]:  # from depth 1: the root would list every name
            nxt = {k[len(prefix)] for k in mt.iterkeys(prefix) if len(k) > len(prefix)}
            assert chr(0x100 + tok) in nxt
            prefix += chr(0x100 + tok)
    n = sum(len(p) - 1 for p in paths[:50])
    res["marisa_step_us_depth1plus"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    root = {k[0] for k in mt.iterkeys("")}
    res["marisa_root_step_ms"] = (time.perf_counter() - t0) * 1e3
    res["marisa_root_fanout"] = len(root)
    return res


def _all_token_strings(tries) -> List[str]:
    """Every name's token ids (+ EOS) as a string of chr(0x100 + id), read back from the CSR
    arrays at once (a breadth-first climb of all leaves)."""
    import numpy as np

    trie = tries.trie
    nodes = trie.leaf_nodes.astype(np.int64)
    cols: List[np.ndarray] = []
    ptr = np.asarray(trie.child_ptr)
    tok = np.asarray(trie.child_tok).astype(np.int64)
    while True:
        live = nodes > 0
        if not live.any():
            break
        col = np.full(len(nodes), -1, dtype=np.int64)
        col[live] = tok[nodes[live] - 1]
        cols.append(col)
        nodes = np.where(live, np.searchsorted(ptr, nodes - 1, side="right") - 1, 0)
    mat = np.stack(cols[::-1], axis=1) if cols else np.zeros((0, 0), np.int64)
    return ["".join(chr(0x100 + t) for t in row if t >= 0) for row in mat.tolist()]


def child_compare(small: Path, big: Path, n_names: int = 300, repeats: int = 7) -> Dict:
    """Step cost and decoding step time of both KBs in one process, measured alternately
    (the machine is shared: alternating keeps the ratio fair); the minimum over repeats."""
    from spacy_syncabel.decoding import TrieSet

    sets = {"100k": TrieSet.from_disk(small / "tries", mmap=False),
            "1M": TrieSet.from_disk(big / "tries", mmap=False)}
    vocab = int(sets["1M"].meta["vocab_size"])
    walks = {}
    for size, tries in sets.items():
        paths = _paths(tries, n_names)
        for label, group in (("all_names", None), ("group_view", GROUP)):
            walks[size, label] = _walks(tries[group], paths)
    best: Dict = {}
    decoder = _Decoder(vocab)
    for _ in range(repeats):
        for size, tries in sets.items():
            for label, group in (("all_names", None), ("group_view", GROUP)):
                trie = tries[group]
                k = f"step_us_{label}_{size}"
                best[k] = min(best.get(k, float("inf")),
                              _step_seconds(trie, walks[size, label], vocab) * 1e6)
                k = f"decode_us_per_beam_step_{label}_{size}"
                best[k] = min(best.get(k, float("inf")), decoder.step_seconds(trie) * 1e6)
    for key in list(best):
        if key.endswith("_1M"):
            best[key[:-3] + "_ratio_1M_over_100k"] = best[key] / best[key[:-3] + "_100k"]
    return best


class _Decoder:
    """beam_search (5 beams, 24 tokens) of a small random Llama over 32 random prompts."""

    def __init__(self, vocab: int, n_prompts: int = 32) -> None:
        import numpy as np
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                          max_position_embeddings=256)
        self.model = LlamaForCausalLM(cfg).eval()
        self.rows: list = []  # rows of each forward pass of the last search
        forward = self.model.forward

        def counted(*args, **kwargs):
            self.rows.append(int(kwargs["input_ids"].shape[0]))
            return forward(*args, **kwargs)

        self.model.forward = counted  # type: ignore[method-assign]
        rng = np.random.default_rng(0)
        self.prompts = [rng.integers(100, 20000, size=24).tolist() for _ in range(n_prompts)]

    def step_seconds(self, trie) -> float:
        """Seconds per beam and decoding step: the search's time after the prompts' forward
        pass over the beams run (the searches of two KBs differ in length, so a time per
        forward pass would compare different mixes of wide and narrow steps)."""
        from spacy_syncabel.decoding import BeamSearchConfig, beam_search

        self.rows = []
        t0 = time.perf_counter()
        first = {}
        forward = self.model.forward

        def timed(*args, **kwargs):
            out = forward(*args, **kwargs)
            first.setdefault("end", time.perf_counter())
            return out

        self.model.forward = timed  # type: ignore[method-assign]
        try:
            beam_search(self.model, self.prompts, [trie] * len(self.prompts), trie.eos_id,
                        trie.eos_id, BeamSearchConfig(num_beams=5, n_best=5, max_new_tokens=24))
        finally:
            self.model.forward = forward  # type: ignore[method-assign]
        end = time.perf_counter()
        return (end - first.get("end", t0)) / max(sum(self.rows[1:]), 1)


def child_decode(out: Path, n_prompts: int = 32) -> Dict:
    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from spacy_syncabel.decoding import BeamSearchConfig, TrieSet, beam_search

    torch.manual_seed(0)
    tries = TrieSet.from_disk(out / "tries", mmap=False)
    vocab = int(tries.meta["vocab_size"])
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                      max_position_embeddings=256)
    model = LlamaForCausalLM(cfg).eval()
    calls = {"n": 0}
    forward = model.forward

    def counted(*args, **kwargs):
        calls["n"] += 1
        return forward(*args, **kwargs)

    model.forward = counted  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    prompts = [rng.integers(100, 20000, size=24).tolist() for _ in range(n_prompts)]
    res: Dict = {}
    for label, group in (("all_names", None), ("group_view", GROUP)):
        trie = tries[group]
        best = float("inf")
        for _ in range(2):
            calls["n"] = 0
            t0 = time.perf_counter()
            beam_search(model, prompts, [trie] * len(prompts), trie.eos_id, trie.eos_id,
                        BeamSearchConfig(num_beams=5, n_best=5, max_new_tokens=24))
            best = min(best, (time.perf_counter() - t0) / max(calls["n"] - 1, 1))
        res[f"decode_step_ms_{label}"] = best * 1e3
    return res


def _child(kind: str, *args: str) -> Dict:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run([sys.executable, __file__, "--child", kind, *args],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-kb", default="/tmp/big_kb/kb.tsv")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_trie"))
    parser.add_argument("--child", default=None)
    parser.add_argument("--reuse", action="store_true", help="keep tries built by a last run")
    parser.add_argument("args", nargs="*")
    a = parser.parse_args()
    if a.child:
        fn = {"build": lambda: child_build(a.args[0], Path(a.args[1])),
              "load": lambda: child_load(Path(a.args[0])),
              "steps": lambda: child_steps(Path(a.args[0])),
              "decode": lambda: child_decode(Path(a.args[0])),
              "compare": lambda: child_compare(Path(a.args[0]), Path(a.args[1]))}[a.child]
        print(json.dumps(fn()))
        return
    results: Dict = {"cpu_count": os.cpu_count(), "load_average": os.getloadavg()}
    stats = Path(a.big_kb).parent / "stats.json"
    if stats.is_file():
        results["big_kb_stats"] = json.loads(stats.read_text(encoding="utf-8"))
    for label, spec in (("100k", "small"), ("1M", a.big_kb)):
        folder = a.work / label
        row = {"kb": spec}
        for kind, args in (("build", (spec, str(folder))), ("load", (str(folder),)),
                           ("steps", (str(folder),))):
            if kind == "build" and a.reuse and (folder / "tries").is_dir():
                continue
            part = _child(kind, *args)
            row.update({f"{kind}.{k}": v for k, v in part.items()})
            print(label, kind, json.dumps(part), flush=True)
        results[label] = row
    results["compare"] = _child("compare", str(a.work / "100k"), str(a.work / "1M"))
    print(json.dumps(results["compare"], indent=2))
    write_results(results)


def write_results(results: Dict) -> None:
    """``trie_scale.json`` (everything) and ``trie_build.json`` (the 100k row alone)."""
    OUT.mkdir(exist_ok=True)
    (OUT / "trie_scale.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    small = results["100k"]
    row = {"n_names": small["build.n_names"], "n_groups": small["build.n_groups"],
           "n_nodes_all_groups": small["build.n_nodes"],
           "build_seconds": small["build.build_seconds"], "megabytes": small["build.tries_array_mb"]}
    (OUT / "trie_build.json").write_text(json.dumps(row, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
