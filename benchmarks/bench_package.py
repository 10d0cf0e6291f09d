"""Benchmark: the project's `package` step on a trained pipeline, its wheel installed offline
into a fresh virtual environment, and `spacy.load(<package>)` there linking a note.

    python benchmarks/bench_package.py --pipeline training/spaccc/pipeline --dataset spaccc \
        --corpus corpus/spaccc/dev.jsonl

The pipeline is copied into a scratch project folder beside this checkout's project.yml and
`spacy project run package` is timed there (the same command line as the project). A wheel of
spacy-syncabel is built from this checkout; a fresh environment that sees the installed
dependencies but not spacy-syncabel installs both wheels with `pip install --no-index`
(:mod:`spacy_syncabel.training.fresh_env`), and links the corpus's first note. The same note is
linked from the pipeline folder in a process of the running environment; load and link times of
both are compared as ratios (one machine, one run). Writes
``benchmarks/results/package_<dataset>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"

LINK = """
import json, sys, time
t0 = time.perf_counter()
import spacy
nlp = spacy.load(sys.argv[1])
t1 = time.perf_counter()
doc = nlp(sys.argv[2])
t2 = time.perf_counter()
ents = [[e.start_char, e.end_char, e.text, e.label_, e.kb_id_] for e in doc.ents]
print(json.dumps({"ents": ents, "load_seconds": t1 - t0, "link_seconds": t2 - t1},
                 ensure_ascii=False))
"""


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    from spacy_syncabel.corpus import read_corpus
    from spacy_syncabel.training.fresh_env import (OFFLINE, build_wheel_of_source, fresh_venv,
                                                   pip_install, run_python)

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--dataset", default="spaccc")
    ap.add_argument("--version", default="0.1.0")
    ap.add_argument("--corpus", type=Path, required=True,
                    help="JSONL corpus: its first note is linked")
    ap.add_argument("--work", type=Path, default=None,
                    help="scratch folder (default: a temporary one)")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_package_", dir=args.work))
    project = work / "project"
    (project / "training" / args.dataset).mkdir(parents=True)
    shutil.copy(ROOT / "project.yml", project / "project.yml")
    shutil.copytree(args.pipeline, project / "training" / args.dataset / "pipeline")
    note = next(iter(read_corpus(args.corpus)))
    env = dict(os.environ, **{k: v for k, v in OFFLINE.items() if k != "PIP_NO_INDEX"})

    t0, c0 = time.perf_counter(), os.times()
    res = subprocess.run([sys.executable, "-m", "spacy", "project", "run", "package",
                          str(project), "--vars.dataset", args.dataset, "--vars.version",
                          args.version], cwd=project, capture_output=True, text=True, env=env)
    package_seconds, c1 = time.perf_counter() - t0, os.times()
    # CPU time of the step's processes: what the wall time is on an idle machine, about
    package_cpu = (c1.children_user - c0.children_user) + (c1.children_system
                                                            - c0.children_system)
    if res.returncode != 0:
        sys.exit(res.stdout[-3000:] + res.stderr[-3000:])
    info = json.loads(res.stdout[res.stdout.index("{"):res.stdout.rindex("}") + 1])
    wheel = project / info["wheel"]

    links = work / "wheels"
    t0 = time.perf_counter()
    own = build_wheel_of_source(ROOT, links, work / "src")
    own_wheel_seconds = time.perf_counter() - t0
    shutil.copy(wheel, links)
    venv = fresh_venv(work / "venv", hide=("spacy-syncabel", info["package"]))
    t0 = time.perf_counter()
    res = pip_install(venv, links, info["package"])
    install_seconds = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(res.stdout[-3000:] + res.stderr[-3000:])
    res = run_python(venv, LINK, info["package"], note.text)
    if res.returncode != 0:
        sys.exit(res.stderr[-3000:])
    installed = json.loads(res.stdout.strip().splitlines()[-1])
    # the same note from the pipeline folder, in a process of the running environment
    res = subprocess.run([sys.executable, "-c", LINK, str(args.pipeline), note.text],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(res.stderr[-3000:])
    folder = json.loads(res.stdout.strip().splitlines()[-1])

    result = {
        "pipeline": str(args.pipeline), "dataset": args.dataset, "package": info["package"],
        "version": info["version"], "requirements": info["requirements"],
        "wheel": wheel.name, "wheel_bytes": wheel.stat().st_size,
        "pipeline_bytes": folder_bytes(args.pipeline),
        "package_step_seconds": round(package_seconds, 2),
        "package_step_cpu_seconds": round(package_cpu, 2),
        "spacy_syncabel_wheel_seconds": round(own_wheel_seconds, 2),
        "spacy_syncabel_wheel_bytes": own.stat().st_size,
        "install_seconds": round(install_seconds, 2),
        "note_id": note.id, "note_chars": len(note.text),
        "installed": {k: (round(v, 2) if isinstance(v, float) else v)
                      for k, v in installed.items()},
        "folder_load_seconds": round(folder["load_seconds"], 2),
        "folder_link_seconds": round(folder["link_seconds"], 2),
        "load_ratio_installed_to_folder": round(installed["load_seconds"]
                                                / folder["load_seconds"], 2),
        "same_entities_as_folder": installed["ents"] == folder["ents"],
        "loadavg_1min": round(os.getloadavg()[0], 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    out = args.output or OUT / f"package_{args.dataset}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in result.items() if k != "installed"}, indent=2))
    print(f"{len(installed['ents'])} entities linked; written {out}")


if __name__ == "__main__":
    main()
