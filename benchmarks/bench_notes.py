"""Benchmark: a trained pipeline for raw notes (segmenter + NER + linker) over real notes, one
process, with the time of each stage.

    python benchmarks/bench_notes.py --pipeline training/spaccc/pipeline \
        --notes ../shared/data/spaccc/texts --limit 200 --name spaccc-notes

Notes/s and mentions/s are one ``nlp.pipe`` pass over the notes (the loop the ``link`` command
runs, same batch size). The stages are a second pass, one stage over all notes after the
other: the tokenizer, each component's ``pipe``, and inside the linker retrieval (the cascade's
and the candidate modes' TF-IDF search) and the LM (decoding or scoring), timed on its engine;
the rest of the linker's time (prompts, spans, n-best) is ``linker_other``.
``load_seconds`` is ``spacy.load``. Peak RSS is the
process's high-water mark; the 1-minute load average before and after says how busy the
machine was. Writes ``benchmarks/results/notes_<name>.json``, e.g. for CANTEMIST:

    python benchmarks/bench_notes.py --pipeline training/cantemist/pipeline \
        --notes ../shared/data/cantemist/dev1 --limit 200 --threads 1 --name cantemist-dev1
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterator, List

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


def read_notes(path: Path, limit: int) -> List[str]:
    """Texts of a folder of ``.txt`` notes (sorted by name) or of a JSONL corpus."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".txt")
        texts = [p.read_text(encoding="utf-8") for p in files]
    else:
        from spacy_syncabel.corpus import read_corpus

        texts = [d.text for d in read_corpus(path)]
    return texts[:limit] if limit else texts


class StageTimer:
    """Seconds spent per stage name."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)
        return timed


def stage_times(nlp, texts: List[str], batch_size: int) -> Dict[str, float]:
    """Seconds of the tokenizer and of each component over all ``texts``, one stage after the
    other (``component.pipe`` at ``batch_size``: the same work as ``nlp.pipe``); inside the
    linker, retrieval and the LM timed on its engine, the rest as ``linker_other``."""
    timer = StageTimer()
    for _, proc in nlp.pipeline:
        engine = getattr(proc, "engine", None)
        if engine is not None:
            engine.retrieve_in_batches = timer.wrap("linker_retrieval",
                                                    engine.retrieve_in_batches)
            engine._link_lm = timer.wrap("linker_lm", engine._link_lm)
    with timer.stage("tokenizer"):
        docs = [nlp.make_doc(t) for t in texts]
    linker = None
    for name, proc in nlp.pipeline:
        with timer.stage(name):
            docs = list(proc.pipe(docs, batch_size=batch_size)) if hasattr(proc, "pipe") \
                else [proc(d) for d in docs]
        if getattr(proc, "engine", None) is not None:
            linker = name
    out = dict(timer.seconds)
    if linker is not None:
        out["linker_other"] = max(out[linker] - out.get("linker_retrieval", 0.0)
                                  - out.get("linker_lm", 0.0), 0.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--notes", type=Path, required=True, help="folder of .txt notes or a corpus")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16, help="nlp.pipe batch size (link's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()

    import spacy
    import torch

    torch.set_num_threads(args.threads)
    texts = read_notes(args.notes, args.limit)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    nlp = spacy.load(args.pipeline)
    load_seconds = time.perf_counter() - start
    n_ents = 0
    labels: Dict[str, int] = defaultdict(int)
    start = time.perf_counter()
    for doc in nlp.pipe(texts, batch_size=args.batch_size):
        n_ents += len(doc.ents)
        for ent in doc.ents:
            labels[ent.label_] += 1
    seconds = time.perf_counter() - start
    stages = stage_times(nlp, texts, args.batch_size)
    result = {
        "pipeline": str(args.pipeline), "notes": str(args.notes), "n_notes": len(texts),
        "n_chars": sum(len(t) for t in texts), "n_entities": n_ents,
        "entities_per_label": dict(sorted(labels.items())),
        "batch_size": args.batch_size, "threads": args.threads,
        "seconds": round(seconds, 3), "load_seconds": round(load_seconds, 3),
        "notes_per_second": round(len(texts) / seconds, 2) if seconds else 0.0,
        "mentions_per_second": round(n_ents / seconds, 1) if seconds else 0.0,
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pipe_names": list(nlp.pipe_names), "machine": platform.machine(),
        # other processes on the machine: notes/s is comparable only at a similar load
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_count": os.cpu_count(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"notes_{args.name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
