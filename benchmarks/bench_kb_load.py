"""Benchmark: loading KBs where many codes share names (the disambiguation's worst cases).

Cases (each a TSV ``code, name, group`` written to a temporary folder, then read with
``spacy_syncabel.kb.read_file`` in a fresh process: wall time, CPU time and peak RSS):

- ``one_name_40k``: 40,000 codes with one single shared name (every code ambiguous);
- ``shared_1m``: 1,000,000 rows. 100,000 codes share names: all carry one name shared by
  the 100,000, and one of 1,000 names each shared by 100 of them; 400,000 other codes have
  two names of their own each, in two groups.

    python benchmarks/bench_kb_load.py                        # both cases
    python benchmarks/bench_kb_load.py --cases one_name_40k --label before --timeout 300

Results go to ``benchmarks/results/kb_load.json`` under ``--label`` (other labels are kept), with
``--checkout`` (say which code was measured: run with another checkout on PYTHONPATH to compare)
and the machine's load average (wall times on a shared machine exceed the CPU times).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, Tuple

OUT = Path(__file__).resolve().parent / "results" / "kb_load.json"


def one_name_40k() -> Iterator[Tuple[str, str, str]]:
    for i in range(40_000):
        yield f"C{i:06d}", "one shared name", "G"


def shared_1m() -> Iterator[Tuple[str, str, str]]:
    for i in range(100_000):
        yield f"S{i:06d}", "shared concept", "Shared"
        yield f"S{i:06d}", f"shared concept number {i % 1000}", "Shared"
    for i in range(400_000):
        group = "A" if i % 2 else "B"
        yield f"U{i:06d}", f"unique name {i}", group
        yield f"U{i:06d}", f"other unique name {i}", group


CASES = {"one_name_40k": one_name_40k, "shared_1m": shared_1m}

_CHILD = """
import json, resource, sys, time, warnings
t0, c0 = time.perf_counter(), time.process_time()
from spacy_syncabel.kb import read_file
t1, c1 = time.perf_counter(), time.process_time()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    kb = read_file(sys.argv[1])
t2, c2 = time.perf_counter(), time.process_time()
nameless = sum(len(r["nameless_codes"]) for r in kb.report["groups"].values())
print(json.dumps({"load_s": round(t2 - t1, 2), "load_cpu_s": round(c2 - c1, 2),
                  "import_s": round(t1 - t0, 2), "codes": len(kb),
                  "names": sum(r["names"] for r in kb.report["groups"].values()),
                  "nameless_codes": nameless,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def run_case(name: str, folder: Path, timeout: float) -> Dict[str, object]:
    path = folder / f"{name}.tsv"
    rows = 0
    with path.open("w", encoding="utf8") as f:
        f.write("code\tname\tgroup\n")
        for code, text, group in CASES[name]():
            f.write(f"{code}\t{text}\t{group}\n")
            rows += 1
    t0 = time.perf_counter()
    try:
        # run from the temporary folder: the package measured is the one on PYTHONPATH
        done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                              text=True, timeout=timeout, cwd=folder)
    except subprocess.TimeoutExpired:
        return {"rows": rows, "finished": False, "timeout_s": timeout}
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(rows=rows, finished=True, process_s=round(time.perf_counter() - t0, 2))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--label", default="after")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--checkout", default="", help="which code was measured (a commit...)")
    args = ap.parse_args()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    entry = results.setdefault(args.label, {})
    entry.update(cpus=os.cpu_count(), checkout=args.checkout,
                 load_average=[round(x, 1) for x in os.getloadavg()])
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            entry[name] = run_case(name, Path(tmp), args.timeout)
            print(name, json.dumps(entry[name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
