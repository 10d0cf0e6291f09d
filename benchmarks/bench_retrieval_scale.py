"""Benchmark: memory and speed of TF-IDF candidate retrieval at UMLS scale (1M, 3M names).

    python benchmarks/bench_retrieval_scale.py [--sizes 1000000 3000000] [--batch 64]
        [--budget-gb 5.5]

Names: every real name of the KBs in ``../shared/data`` (SPACCC-lite, QUAERO-lite, MEDIC,
eCIE-O-3.1), then names made of real words until the size is reached: each draws its word
count from the real names' word counts and its words from their word frequencies (seeded), so
the char 3-gram statistics are those of real KB names. Mentions: real SPACCC training mentions.

The index is :class:`CandidateIndex` over all names (one group: the all-groups search), built
on a names-only stand-in for the KB (a ConceptKB of 3M names would only add its own memory).
For each size, in one process: the index is built, then a batch of ``--batch`` mentions is
retrieved (top 20 names each) by

* ``sparse`` (after): ``CandidateIndex.top``, the sparse product and per-row top-k;
* ``dense`` (before): the previous ``top``: dense cosines (``.toarray()``), ``argpartition``
  over every name; run only when its predicted peak (16 bytes per mention and name) fits
  under ``--budget-gb`` beside the process' memory.

Peak RSS of a batch above the index: the kernel's high-water mark (VmHWM) reset to the
current RSS (``/proc/self/clear_refs``) after the index is built and freed memory is trimmed,
read after the batch, minus that RSS. Mentions/s: the median of ``--reps`` batches.
Writes ``benchmarks/results/retrieval_scale.json``.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from spacy_syncabel.decoding.candidates import CandidateIndex
from spacy_syncabel.text import clean_name

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parents[1] / "shared" / "data"
OUT = ROOT / "results" / "retrieval_scale.json"
KBS = ("spaccc/kb_snomed_es_lite.tsv", "quaero/kb_umls_fr_lite.tsv",
       "medic/medic_06Jul2012.txt", "cantemist/cie_o3.jsonl")


def _status(key: str) -> int:
    """A ``/proc/self/status`` value in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _settle() -> int:
    """Collect, give freed heap back to the OS, reset the high-water mark; the RSS."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # pragma: no cover - not glibc
        pass
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def real_names(data: Path) -> List[str]:
    from spacy_syncabel.kb import read_file

    names: Dict[str, None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rel in KBS:
            for _, name, _ in read_file(data / rel).entries():
                names[name] = None
    return list(names)


def make_names(real: List[str], n: int, seed: int = 0) -> List[str]:
    """``real`` then names of real words (word counts and word frequencies of ``real``)."""
    if n <= len(real):
        return real[:n]
    words: Dict[str, int] = {}
    lengths: List[int] = []
    for name in real:
        toks = name.split()
        lengths.append(len(toks))
        for t in toks:
            words[t] = words.get(t, 0) + 1
    vocab = np.array(list(words), dtype=object)
    p = np.array(list(words.values()), dtype=np.float64)
    p /= p.sum()
    rng = np.random.default_rng(seed)
    out: Dict[str, None] = dict.fromkeys(real)  # distinct, as a KB's names
    while len(out) < n:
        counts = rng.choice(np.array(lengths), size=n - len(out))
        drawn = rng.choice(len(vocab), size=int(counts.sum()), p=p)
        pos = 0
        for c in counts.tolist():
            out[" ".join(vocab[drawn[pos:pos + c]].tolist())] = None
            pos += c
    return list(out)[:n]


def real_mentions(data: Path, n: int, seed: int = 0) -> List[str]:
    from spacy_syncabel.tsv import iter_tsv

    spans = list(dict.fromkeys(row["span"] for _, row in iter_tsv(data / "spaccc" / "train.tsv")))
    rng = np.random.default_rng(seed)
    return [spans[i] for i in rng.choice(len(spans), size=n, replace=False)]


class NamesKB:
    """What :class:`CandidateIndex` reads from a KB, for a plain list of names."""

    groups: List[str] = []

    def __init__(self, names: Sequence[str]) -> None:
        self._names = list(names)

    def names(self, group: Optional[str] = None) -> List[str]:
        return self._names

    def lookup(self, name: str, group: Optional[str] = None) -> Optional[str]:
        return None


def dense_top(index: CandidateIndex, mentions: Sequence[str], n: int,
              ) -> List[List[Tuple[str, float]]]:
    """The previous ``CandidateIndex.top`` (all groups, no aliases): dense cosines."""
    queries = index.vectorizer.transform([clean_name(m) for m in mentions])
    sims = (queries @ index.matrices[None]).toarray()
    names = index.names[None]
    k = min(n, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    out = []
    for row, cand in zip(sims, top):
        cand = cand[np.argsort(-row[cand], kind="stable")]
        best: Dict[str, float] = {}
        for j in cand:
            if names[j] not in best:
                best[names[j]] = float(row[j])
                if len(best) == n:
                    break
        out.append(list(best.items()))
    return out


def sparse_top(index: CandidateIndex, mentions: Sequence[str], n: int,
               ) -> List[List[Tuple[str, float]]]:
    return index.top(mentions, [None] * len(mentions), n)


def _same_up_to_ties(a: List[Tuple[str, float]], b: List[Tuple[str, float]]) -> bool:
    """Same cosines, and the same names at each cosine but the last one (where the top-k
    cuts a tie, each path keeps other names of that cosine)."""
    if [s for _, s in a] != [s for _, s in b]:
        return False
    last = a[-1][1] if a else None
    return ({(n, s) for n, s in a if s != last} == {(n, s) for n, s in b if s != last})


def measure(fn, index, mentions, n: int, reps: int) -> Dict[str, float]:
    base = _settle()
    times = []
    result = None
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn(index, mentions, n)
        times.append(time.perf_counter() - t0)
    peak = _status("VmHWM") - base
    del result
    med = statistics.median(times)
    return {"peak_rss_above_index_mb": round(peak / 2**20, 1),
            "seconds_per_batch": round(med, 3),
            "mentions_per_s": round(len(mentions) / med, 1)}


def run_size(names: List[str], mentions: List[str], n: int, reps: int,
             budget: float) -> Dict[str, object]:
    t0 = time.perf_counter()
    index = CandidateIndex(NamesKB(names))
    build_s = time.perf_counter() - t0
    build_peak = _status("VmHWM")
    rss = _settle()
    res: Dict[str, object] = {
        "names": len(names), "index_nnz": int(index.matrices[None].nnz),
        "index_build_s": round(build_s, 1),
        "process_rss_with_index_mb": round(rss / 2**20, 1),
        "process_peak_while_building_mb": round(build_peak / 2**20, 1),
    }
    res["sparse"] = measure(sparse_top, index, mentions, n, reps)
    dense_need = 16 * len(mentions) * len(names)  # float32 cosines, their negation, int64 ids
    res["dense_predicted_peak_mb"] = round(dense_need / 2**20, 1)
    if rss + dense_need <= budget * 2**30:
        res["dense"] = measure(dense_top, index, mentions, n, reps)
        dense = dense_top(index, mentions, n)
        sparse = sparse_top(index, mentions, n)
        # the dense path breaks ties at the k-th cosine arbitrarily (argpartition), the
        # sparse one by column: the cosines must be the same, the names where no tie is cut
        res["same_cosines"] = sum([s for _, s in a] == [s for _, s in b]
                                  for a, b in zip(dense, sparse)) / len(dense)
        res["same_names"] = sum(a == b for a, b in zip(dense, sparse)) / len(dense)
        res["same_names_up_to_tie_order"] = sum(
            _same_up_to_ties(a, b) for a, b in zip(dense, sparse)) / len(dense)
    else:
        res["dense"] = None
        res["dense_skipped"] = (f"needs ~{dense_need / 2**30:.1f} GB beside "
                                f"{rss / 2**30:.1f} GB: over the {budget} GB budget")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--top", type=int, default=20, help="names retrieved per mention")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--budget-gb", type=float, default=5.5,
                    help="skip the dense path when its predicted peak would pass this")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # one size in this process: its result as the last line of stdout
        real = real_names(args.data)
        res = run_size(make_names(real, args.sizes[0]), real_mentions(args.data, args.batch),
                       args.top, args.reps, args.budget_gb)
        res["real_names"] = min(len(real), args.sizes[0])
        print(json.dumps(res), flush=True)
        return
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "batch": args.batch, "top": args.top, "sizes": []}
    for size in args.sizes:  # each size in a fresh process: no heap left over from another
        print(f"{size} names ...", flush=True)
        cmd = [sys.executable, __file__, "--one", "--sizes", str(size), "--batch",
               str(args.batch), "--top", str(args.top), "--reps", str(args.reps),
               "--budget-gb", str(args.budget_gb), "--data", str(args.data)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(res), flush=True)
        results["sizes"].append(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
