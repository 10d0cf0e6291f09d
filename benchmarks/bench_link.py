"""Benchmark: the `link` command over SPACCC's 750 training texts as raw notes.

    python benchmarks/bench_link.py                       # 750 notes, 1 process; 200 notes: 1 / n_process=2 / Ray
    python benchmarks/bench_link.py --pipeline training/spaccc/model-best --name trained

The pipeline finds entities with an entity_ruler built from the training mentions (a stand-in
for an NER) and links them with syncabel_linker: a trained linker pipeline (--pipeline; the ruler
is put in front) or, by default, an untrained TinyLlama of the project's size (256 hidden,
4 layers; decoding cost does not depend on training). Every run is the real command in a
subprocess: notes/s as the command reports it (linking only) and end to end (with loading),
peak RSS of the whole process tree (workers and Ray actors included), sampled with psutil.
Writes benchmarks/results/link_<name>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
DATA = ROOT.parent / "shared" / "data" / "spaccc"
TINY = {"@misc": "spacy_syncabel.TinyLlama.v1", "hidden_size": 256, "num_layers": 4,
        "num_heads": 4, "intermediate_size": 672, "vocab_size": 4000, "seed": 0}


def build_pipeline(path: Path, trained: str | None, num_beams: int) -> Path:
    import spacy

    from spacy_syncabel.corpus import read_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = read_corpus(DATA / "train.tsv")
    patterns = sorted({(d.text[m.start:m.end], m.label) for d in docs for m in d.mentions})
    if trained:
        nlp = spacy.load(trained)
        ruler = nlp.add_pipe("entity_ruler", first=True)
    else:
        nlp = spacy.blank("es")
        ruler = nlp.add_pipe("entity_ruler")
        nlp.add_pipe("syncabel_linker", config={
            "model": TINY, "num_beams": num_beams, "n_best": num_beams,
            "kb_loader": {"@misc": "spacy_syncabel.KBFromFile.v1",
                          "path": str(DATA / "kb_snomed_es_lite.tsv")}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nlp.initialize()
    ruler.add_patterns([{"label": label, "pattern": text} for text, label in patterns])
    nlp.to_disk(path)
    return path


def notes_folder(work: Path, n: int) -> Path:
    texts = sorted((DATA / "texts").glob("*.txt"))
    if n >= len(texts):
        return DATA / "texts"
    folder = work / f"notes_{n}"
    folder.mkdir(exist_ok=True)
    for src in texts[:n]:
        shutil.copyfile(src, folder / src.name)
    return folder


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(pipeline: Path, notes: Path, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "spacy_syncabel", "link", str(pipeline), str(notes),
           "--output", str(out), "--no-progress", *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_DEDUP_LOGS="0")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    ps, peak, done = psutil.Process(proc.pid), 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(ps))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode})")
    text = stdout.decode()
    result = json.loads(text[text.index("{"):])
    result.update(command=" ".join(cmd[1:]), wall_seconds=round(wall, 1),
                  notes_per_second_end_to_end=round(result["linked"] / wall, 3),
                  peak_tree_rss_mb=round(peak / 2**20, 1))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", default=None, help="A trained linker pipeline (default: an untrained tiny one).")
    ap.add_argument("--name", default="spaccc-tiny-256x4")
    ap.add_argument("--full", type=int, default=750, help="Notes of the single-process run.")
    ap.add_argument("--compare", type=int, default=200, help="Notes of the 1 / 2 / Ray comparison (0: skip).")
    ap.add_argument("--num-beams", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_link_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pipeline = build_pipeline(work / "pipeline", args.pipeline, args.num_beams)
    report = {"name": args.name, "pipeline": args.pipeline or f"untrained TinyLlama {TINY}",
              "entities": "entity_ruler from the SPACCC training mentions",
              "num_beams": args.num_beams, "batch_size": args.batch_size,
              "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0],
              "build_seconds": round(time.perf_counter() - t0, 1), "runs": {}}
    bs = ["--batch-size", str(args.batch_size)]
    runs = [(f"{args.full}_notes_1_process", args.full, bs + ["--threads", "1"])]
    if args.compare:
        runs += [(f"{args.compare}_notes_1_process", args.compare, bs + ["--threads", "1"]),
                 (f"{args.compare}_notes_n_process_2", args.compare, bs + ["--n-process", "2"])]
        if not args.no_ray:
            runs.append((f"{args.compare}_notes_ray_2_actors", args.compare,
                         bs + ["--ray", "local", "--concurrency", "2"]))
    for key, n, extra in runs:
        out = work / f"{key}.jsonl" if "ray" not in key else work / key
        result = run(pipeline, notes_folder(work, n), out, extra)
        report["runs"][key] = result
        print(key, json.dumps({k: result[k] for k in ("linked", "entities", "notes_per_second",
                                                      "notes_per_second_end_to_end",
                                                      "peak_tree_rss_mb")}), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"link_{args.name}.json"
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
