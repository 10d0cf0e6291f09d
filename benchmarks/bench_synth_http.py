"""Benchmark: `synth --backend openai` at concurrency 1 vs 4, concepts per minute.

Two servers, the same 40 SPACCC concepts (the first 40 of shard 0/1):

* ``llama_cpp``: llama-cpp-python's OpenAI-compatible server (the ``synth`` extra) with
  SmolLM2-135M-Instruct's GGUF on localhost, timed through the ``synth`` command itself.
  llama-cpp-python's server has no parallel slots: it holds one model behind a lock and
  answers one request at a time (its settings have ``n_batch``/``n_threads``, no
  ``n_parallel``), so concurrency can only hide the client's own time here. A server with
  continuous batching (vLLM, TGI, SGLang, llama.cpp's C++ ``llama-server --parallel N``)
  answers requests together.
* ``fixed_latency``: a local stand-in that answers every request after a fixed delay and
  serves any number at once (a batching server whose GPU is not saturated); it shows how many
  requests the client really keeps in flight.

    python benchmarks/bench_synth_http.py [--concepts 40] [--threads 1] [--repeats 2]

Writes ``benchmarks/results/synth_http.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
KB = DATA / "spaccc" / "kb_snomed_es_lite.tsv"
OUT = Path(__file__).resolve().parent / "results"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(threads: int):
    """llama_cpp.server on a free port with SmolLM2's GGUF; returns (process, base_url)."""
    import httpx

    from spacy_syncabel.models import smollm2_gguf_path

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf_path()),
         "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", str(threads), "--verbose", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError("llama.cpp server died: " + proc.stderr.read().decode()[-2000:])
        try:
            if httpx.get(base + "/models", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            proc.kill()
            raise RuntimeError("llama.cpp server did not start within 120 s")
        time.sleep(0.3)


def run_synth_cli(base_url: str, model: str, concurrency: int, concepts: int,
                  n_mentions: int, max_tokens: int) -> dict:
    """One `python -m spacy_syncabel synth --backend openai` run into a fresh file; its stats."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "synth.jsonl"
        cmd = [sys.executable, "-m", "spacy_syncabel", "synth", str(KB), str(out),
               "--backend", "openai", "--base-url", base_url, "--model", model,
               "--api-key-env", "", "--concurrency", str(concurrency), "--limit", str(concepts),
               "--n-mentions", str(n_mentions), "--max-new-tokens", str(max_tokens),
               "--timeout", "600", "--no-progress"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        stats = json.loads(proc.stdout[proc.stdout.index("{"):])
        n_done = sum(1 for _ in open(str(out) + ".done", encoding="utf8"))
    return {"concurrency": concurrency, "concepts_done": stats["concepts_done"],
            "done_lines": n_done, "seconds": stats["seconds"],
            "concepts_per_minute": stats["concepts_per_minute"],
            "accepted": stats["accepted"], "requested": stats["requested"],
            "command_wall_seconds": round(wall, 2)}


class _Latency(BaseHTTPRequestHandler):
    delay = 0.25
    lock = threading.Lock()
    in_flight = 0
    max_in_flight = 0

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = re.search(r"\n[^\n:]+: ([^\n]+)\n", body["messages"][-1]["content"]).group(1)
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.max_in_flight = max(cls.max_in_flight, cls.in_flight)
        try:
            time.sleep(cls.delay)
            text = "\n".join(f"SENTENCE: Paciente de {50 + k} años con [{name}] en seguimiento "
                             f"por su médico de atención primaria." for k in range(2))
            data = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def log_message(self, *args):
        pass


def run_fixed_latency(kb, concurrency: int, concepts: int, delay: float) -> dict:
    from spacy_syncabel.synthesis import OpenAIGenerator, PromptBuilder, synthesize

    _Latency.delay, _Latency.max_in_flight = delay, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Latency)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gen = OpenAIGenerator(f"http://127.0.0.1:{server.server_port}/v1", "fake",
                                  api_key_env=None, concurrency=concurrency)
            with gen:
                stats = synthesize(kb, Path(tmp) / "o.jsonl", gen,
                                   PromptBuilder(kb, n_mentions=2), limit=concepts,
                                   progress=False)
    finally:
        server.shutdown()
        server.server_close()
    return {"concurrency": concurrency, "concepts_done": stats.concepts_done,
            "seconds": round(stats.seconds, 2),
            "concepts_per_minute": round(stats.concepts_per_minute, 1),
            "server_max_in_flight": _Latency.max_in_flight}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concepts", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp server threads")
    parser.add_argument("--n-mentions", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.25, help="fixed-latency server, s")
    parser.add_argument("--repeats", type=int, default=2, help="llama.cpp: runs of each")
    parser.add_argument("--skip-llama", action="store_true")
    args = parser.parse_args()

    from spacy_syncabel.kb import read_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = read_file(KB)
    result = {"kb": str(KB.relative_to(DATA)), "concepts": args.concepts,
              "n_mentions": args.n_mentions, "cpu_cores": len(os.sched_getaffinity(0)),
              "load_avg_1min_start": round(os.getloadavg()[0], 2)}
    fixed = [run_fixed_latency(kb, c, args.concepts, args.delay) for c in (1, 4)]
    result["fixed_latency"] = {"delay_s": args.delay, "runs": fixed,
                               "speedup_4_vs_1": round(fixed[1]["concepts_per_minute"]
                                                       / fixed[0]["concepts_per_minute"], 2)}
    print(json.dumps(result["fixed_latency"], indent=2), flush=True)
    if not args.skip_llama:
        proc, base = start_llama_server(args.threads)
        order = [1, 4] * args.repeats  # alternated: a change of machine load hits both
        try:
            runs = []
            for c in order:
                runs.append(run_synth_cli(base, "smollm2", c, args.concepts, args.n_mentions,
                                          args.max_tokens))
                runs[-1]["load_avg_1min"] = round(os.getloadavg()[0], 2)
                print(json.dumps(runs[-1]), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        median = {c: statistics.median(r["concepts_per_minute"] for r in runs
                                       if r["concurrency"] == c) for c in (1, 4)}
        result["llama_cpp"] = {
            "server": f"python -m llama_cpp.server (llama-cpp-python) --n_threads {args.threads}"
                      " --n_ctx 2048, SmolLM2-135M-Instruct GGUF; one request at a time "
                      "(no parallel slots in this server)",
            "max_tokens": args.max_tokens, "order": order, "runs": runs,
            "median_concepts_per_minute": {str(c): round(v, 2) for c, v in median.items()},
            "speedup_4_vs_1": round(median[4] / median[1], 2)}
    result["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    OUT.mkdir(exist_ok=True)
    (OUT / "synth_http.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
