"""Concurrent synthesis against a local fake OpenAI-compatible server: requests stay in flight
across concepts, 429/500/time-outs are retried (Retry-After honoured), and an aborted run
resumes with every concept exactly once."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.synthesis import OpenAIGenerator, PromptBuilder, read_done, synthesize
from spacy_syncabel.synthesis.backends import retry_after_seconds


class FakeServer:
    """A chat-completions endpoint on 127.0.0.1 (random port) that answers two sentences
    mentioning the concept's name. ``policy(n, code)`` -> ``None`` (answer), an HTTP status
    (error), or ``("sleep", seconds)`` (answer late); it is called under the server's lock
    with ``n`` the 1-based request number. Records max in-flight requests and every start."""

    def __init__(self, policy=None, latency: float = 0.03, retry_after: str = "0"):
        self.policy = policy or (lambda n, code: None)
        self.latency = latency
        self.retry_after = retry_after
        self.t429 = []  # when each 429 was sent
        self.lock = threading.Lock()
        self.n = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.starts = []  # (monotonic time, code, status)
        self.statuses = Counter()
        self.hook = None  # called with (code) before answering, outside the lock
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = body["messages"][-1]["content"]
                code = re.search(r": (\S+)\n", user).group(1)
                name = re.search(r"\n[^\n:]+: ([^\n]+)\n", user).group(1)
                with server.lock:
                    server.n += 1
                    action = server.policy(server.n, code)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    status = action if isinstance(action, int) else 200
                    server.starts.append((time.monotonic(), code, status))
                    server.statuses[status] += 1
                try:
                    if server.hook is not None:
                        server.hook(code)
                    time.sleep(action[1] if isinstance(action, tuple) else server.latency)
                    if isinstance(action, int):
                        self.send_response(action)
                        if action == 429:
                            self.send_header("Retry-After", server.retry_after)
                        self.end_headers()
                        if action == 429:
                            server.t429.append(time.monotonic())
                        self.wfile.write(b"try again")
                        return
                    text = (f"SENTENCE: El paciente refiere [{name}] desde hace tres días sin "
                            f"otros síntomas asociados.\nSENTENCE: En la exploración se confirma "
                            f"[{name}] y se decide seguimiento en consulta externa.")
                    data = json.dumps({"choices": [{"message": {"role": "assistant",
                                                                "content": text}}]})
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(data.encode())
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _generator(url, **kwargs):
    kwargs.setdefault("concurrency", 4)
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("timeout", 5)
    return OpenAIGenerator(url, "fake", api_key_env=None, **kwargs)


def _assert_each_concept_once(out, codes):
    done = [r["concept"] for r in read_done(out)]
    assert sorted(done) == sorted(codes)  # each exactly once in the sidecar
    docs = read_corpus(out)
    per_code = Counter(d.mentions[0].code for d in docs)
    assert per_code == {c: 2 for c in codes}  # and its two sentences once in the output
    assert len({d.id for d in docs}) == len(docs)


def test_errors_and_timeouts_are_retried_with_requests_in_flight(small_kb, tmp_path):
    """Every 3rd request fails (429 or 500 in turn), the 5th answers after the client's
    time-out: every concept still ends up exactly once, with 4 requests in flight."""
    def policy(n, code):
        if n == 5:
            return ("sleep", 1.5)
        if n % 3 == 0:
            return 429 if n % 6 == 0 else 500
        return None

    out = tmp_path / "o.jsonl"
    with FakeServer(policy, latency=0.05) as server:
        with _generator(server.url, timeout=0.5) as gen:
            stats = synthesize(small_kb, out, gen, PromptBuilder(small_kb, n_mentions=2),
                               progress=False)
    codes = sorted(small_kb.codes)
    assert stats.concepts_done == len(codes)
    _assert_each_concept_once(out, codes)
    assert server.statuses[429] >= 1 and server.statuses[500] >= 1
    failed = server.statuses[429] + server.statuses[500]
    assert gen.n_retries >= failed + 1  # each error and the time-out were retried
    slow = server.starts[4][1]  # the 5th request's concept timed out, then was asked again
    assert sum(code == slow for _, code, _ in server.starts) >= 2
    assert server.max_in_flight >= 2
    assert gen.max_in_flight == 4


def test_no_head_of_line_blocking_across_concepts(small_kb, tmp_path):
    """The first concept's request hangs until the server has seen every other concept: a
    runner that waited for chunks of concepts would never get there (the hook times out)."""
    codes = sorted(small_kb.codes)
    others_seen = threading.Event()
    seen = set()
    first = {}

    def hook(code):
        with server.lock:
            first.setdefault("code", code)
            seen.add(code)
            if len(seen) == len(codes):
                others_seen.set()
        if code == first["code"]:
            others_seen.wait(timeout=5)

    out = tmp_path / "o.jsonl"
    with FakeServer(latency=0.01) as server:
        server.hook = hook
        with _generator(server.url, concurrency=2) as gen:
            synthesize(small_kb, out, gen, PromptBuilder(small_kb, n_mentions=2),
                       progress=False)
    assert others_seen.is_set()
    _assert_each_concept_once(out, codes)


def test_retry_after_pauses_every_worker(small_kb, tmp_path):
    """A 429 with ``Retry-After: 2`` holds back all requests for two seconds, not only its
    own (a request may still leave in the moment before the client has read the 429)."""
    out = tmp_path / "o.jsonl"
    with FakeServer(lambda n, code: 429 if n == 1 else None, latency=0.05,
                    retry_after="2") as server:
        with _generator(server.url, concurrency=3) as gen:
            synthesize(small_kb, out, gen, PromptBuilder(small_kb, n_mentions=2), limit=6,
                       progress=False)
    t429, = server.t429
    sent_during_pause = [t for t, _, _ in server.starts if t429 + 0.6 < t < t429 + 1.9]
    assert sent_during_pause == []
    assert max(t for t, _, _ in server.starts) > t429 + 1.9
    _assert_each_concept_once(out, sorted(r["concept"] for r in read_done(out)))
    assert len(read_done(out)) == 6


def test_failure_keeps_finished_concepts_and_resumes(small_kb, tmp_path):
    """A concept the server refuses (HTTP 400) aborts the run after the requests in flight
    are written; the next run does the rest, each concept once."""
    codes = sorted(small_kb.codes)
    bad = codes[5]
    out = tmp_path / "o.jsonl"
    with FakeServer(lambda n, code: 400 if code == bad else None) as server:
        with _generator(server.url) as gen, pytest.raises(RuntimeError, match="E074"):
            synthesize(small_kb, out, gen, PromptBuilder(small_kb, n_mentions=2),
                       progress=False)
    first = [r["concept"] for r in read_done(out)]
    assert bad not in first and len(first) == len(set(first)) and first
    assert Counter(c for _, c, _ in server.starts)[bad] == 1  # a 400 is not retried
    with FakeServer() as server, _generator(server.url) as gen:
        stats = synthesize(small_kb, out, gen, PromptBuilder(small_kb, n_mentions=2),
                           progress=False)
    assert stats.concepts_skipped == len(first)
    assert sorted(c for _, c, _ in server.starts) == sorted(set(codes) - set(first))
    _assert_each_concept_once(out, codes)


@pytest.mark.slow
def test_kill_9_with_requests_in_flight_and_resume(kb_tsv, small_kb, tmp_path):
    """`synth --backend openai --concurrency 4` killed (SIGKILL) while requests are in flight,
    then run again: every concept exactly once, and only the unfinished ones requested again."""
    codes = sorted(small_kb.codes)
    out = tmp_path / "o.jsonl"
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")

    def cli(url):
        return [sys.executable, "-m", "spacy_syncabel", "synth", str(kb_tsv), str(out),
                "--backend", "openai", "--base-url", url, "--model", "fake", "--api-key-env", "",
                "--concurrency", "4", "--n-mentions", "2", "--no-progress"]

    with FakeServer(latency=0.4) as server:
        proc = subprocess.Popen(cli(server.url), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while len(read_done(out)) < 3:
                assert proc.poll() is None and time.time() < deadline, "synth never got going"
                time.sleep(0.02)
            while server.in_flight < 2:  # kill it with requests on the wire
                assert time.time() < deadline
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    first = {r["concept"] for r in read_done(out)}
    assert 3 <= len(first) < len(codes)
    with FakeServer(latency=0.01) as server:
        subprocess.run(cli(server.url), env=env, check=True, capture_output=True, timeout=120)
    assert sorted(c for _, c, _ in server.starts) == sorted(set(codes) - first)
    _assert_each_concept_once(out, codes)


def test_retry_after_header_values():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds("-2") == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    now = 1_700_000_000.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 7))
    assert retry_after_seconds(date, now=now) == pytest.approx(7.0)
