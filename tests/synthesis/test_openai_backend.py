"""The OpenAI-compatible HTTP backend: retries against a tiny local server, and a real
llama.cpp server (llama-cpp-python, the `synth` extra) serving SmolLM2's GGUF."""
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.synthesis import OpenAIGenerator, PromptBuilder, read_done, synthesize

ANSWER = ("SENTENCE: Refiere [fiebre] de tres días de evolución sin otros síntomas asociados.\n"
          "SENTENCE: A la exploración destaca [pirexia] de 38,5 grados sin foco infeccioso claro.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Flaky(BaseHTTPRequestHandler):
    calls = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Flaky.calls.append((self.path, self.headers.get("Authorization"), body))
        if len(_Flaky.calls) % 2 == 1:  # every first try fails
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"busy")
            return
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": ANSWER}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *args):
        pass


def test_retries_key_and_output(small_kb, tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SYNTH_TEST_KEY", "sk-secret")
    _Flaky.calls.clear()
    try:
        gen = OpenAIGenerator(f"http://127.0.0.1:{server.server_port}/v1", "m",
                              api_key_env="SYNTH_TEST_KEY", concurrency=1, backoff=0.01)
        assert "sk-secret" not in repr(gen)
        out = tmp_path / "o.jsonl"
        with gen:
            stats = synthesize(small_kb, out, gen, PromptBuilder(small_kb, n_mentions=2),
                               limit=2, progress=False)
        assert gen.n_retries == 2
    finally:
        server.shutdown()
    path, auth, body = _Flaky.calls[-1]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-secret"
    assert body["model"] == "m" and body["messages"][0]["role"] == "system"
    assert stats.concepts_done == 2 and len(read_done(out)) == 2
    assert all(d.mentions[0].code in small_kb.codes for d in read_corpus(out))


def test_unreachable_server_raises_after_retries(small_kb, tmp_path):
    gen = OpenAIGenerator(f"http://127.0.0.1:{_free_port()}/v1", "m", api_key_env=None,
                          max_retries=2, backoff=0.01, timeout=2)
    out = tmp_path / "o.jsonl"
    with gen, pytest.raises(RuntimeError, match="E075"):
        synthesize(small_kb, out, gen, PromptBuilder(small_kb), limit=2, progress=False)
    assert read_done(out) == []  # nothing is marked done


@pytest.fixture(scope="module")
def llama_server():
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install -e '.[synth]')")
    from spacy_syncabel.models import smollm2_gguf_path

    gguf = smollm2_gguf_path()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias",
         "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
         "--n_threads", "2", "--verbose", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail("llama.cpp server died: " + proc.stderr.read().decode()[-2000:])
            try:
                if httpx.get(base + "/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail("llama.cpp server did not start within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_llama_cpp_server(llama_server, small_kb, tmp_path):
    gen = OpenAIGenerator(llama_server, "smollm2", api_key_env=None, concurrency=2,
                          max_tokens=32, timeout=60)
    out, raw = tmp_path / "llama.jsonl", tmp_path / "raw.jsonl"
    with gen:
        stats = synthesize(small_kb, out, gen, PromptBuilder(small_kb, n_mentions=2), limit=2,
                           progress=False, raw_log=raw)
    assert stats.concepts_done == 2 and stats.requested == 4
    assert len(read_done(out)) == 2
    raws = [json.loads(line)["raw"] for line in raw.read_text(encoding="utf8").splitlines()]
    assert len(raws) == 2 and all(r.strip() for r in raws)  # the model did answer
    assert len(read_corpus(out)) == stats.accepted  # whatever was accepted is a valid corpus
