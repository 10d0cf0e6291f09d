"""The `judge` command: wrong predictions graded by an LLM behind a stand-in OpenAI-compatible
server (resume after an interruption, a malformed answer) or by a local model."""
import json
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from spacy_syncabel.cli import app
from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.evaluation.judge import (INVALID, LABELS, build_items, parse_verdict,
                                             read_records, run_judge)
from spacy_syncabel.evaluation.judge_backends import HFJudge, OpenAIJudge
from spacy_syncabel.evaluation.scoring_file import load_kb, read_predictions

KB = [("38341003", "hipertensión arterial", "ENFERMEDAD"), ("38341003", "HTA", "ENFERMEDAD"),
      ("400130008", "arteritis temporal", "ENFERMEDAD"),
      ("87511001", "arteritis temporal de células gigantes", "ENFERMEDAD"),
      ("385093006", "neumonía adquirida en la comunidad", "ENFERMEDAD"),
      ("233604007", "neumonía", "ENFERMEDAD"),
      ("73211009", "diabetes mellitus", "ENFERMEDAD"),
      ("44054006", "diabetes mellitus tipo 2", "ENFERMEDAD"),
      ("25064002", "cefalea", "SINTOMA"), ("25064002", "dolor de cabeza", "SINTOMA"),
      ("21522001", "dolor abdominal", "SINTOMA"),
      ("418394000", "ecografía de abdomen y pelvis", "PROCEDIMIENTO"),
      ("77477000", "tomografía computarizada", "PROCEDIMIENTO")]
# (text, mention, label, gold code, predicted code or None)
CASES = [
    ("Varón de 54 años con hipertensión arterial en tratamiento con enalapril.",
     "hipertensión arterial", "ENFERMEDAD", "38341003", "38341003"),
    ("Mujer de 69 años con un brote de arteritis de la temporal en tratamiento con corticoides.",
     "arteritis de la temporal", "ENFERMEDAD", "400130008", "87511001"),
    ("Ingresa por neumonía adquirida en la comunidad con insuficiencia respiratoria.",
     "neumonía adquirida en la comunidad", "ENFERMEDAD", "385093006", "233604007"),
    ("Antecedentes de diabetes en tratamiento con dieta.",
     "diabetes", "ENFERMEDAD", "73211009", "44054006"),
    ("La ecografía abdomino-pélvica informó de útero aplásico.",
     "ecografía abdomino-pélvica", "PROCEDIMIENTO", "418394000", "77477000"),
    ("Refiere dolor de cabeza de tres días de evolución.",
     "dolor de cabeza", "SINTOMA", "25064002", "21522001"),
    ("Presenta cefalea opresiva vespertina.", "cefalea opresiva", "SINTOMA", "25064002", None),
]
# what the stand-in judge says, by mention (a NO_RELATION in prose, and one malformed answer)
ANSWERS = {
    "arteritis de la temporal": '{"label": "EXACT"}',
    "neumonía adquirida en la comunidad": '{"label": "BROAD"}',
    "diabetes": ' {"label":"narrow"} ',
    "ecografía abdomino-pélvica": "The answer is NO_RELATION.",
    "dolor de cabeza": "Lo siento, no puedo evaluar esto.",
}


@pytest.fixture()
def files(tmp_path):
    gold, preds = [], []
    for i, (text, mention, label, code, pred) in enumerate(CASES):
        start = text.index(mention)
        gold.append({"id": f"d{i}", "text": text, "entities": [
            {"start": start, "end": start + len(mention), "label": label, "code": code}]})
        if pred:
            preds.append({"doc_id": f"d{i}", "start": start, "end": start + len(mention),
                          "codes": [pred]})
    paths = {"gold": tmp_path / "gold.jsonl", "pred": tmp_path / "pred.jsonl",
             "kb": tmp_path / "kb.tsv", "out": tmp_path / "judged.jsonl"}
    paths["gold"].write_text("".join(json.dumps(g, ensure_ascii=False) + "\n" for g in gold),
                             encoding="utf-8")
    paths["pred"].write_text("".join(json.dumps(p) + "\n" for p in preds), encoding="utf-8")
    paths["kb"].write_text("code\tname\tgroup\n" + "".join(f"{c}\t{n}\t{g}\n" for c, n, g in KB),
                           encoding="utf-8")
    return paths


class _Judge(BaseHTTPRequestHandler):
    """Answers by the mention in the question; HTTP 400 once ``fail_after`` answers are out."""

    calls: list = []
    fail_after = None
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user = body["messages"][-1]["content"]
        mention = user.split('Mention: "', 1)[1].split('"', 1)[0]
        with _Judge.lock:
            refuse = _Judge.fail_after is not None and len(_Judge.calls) >= _Judge.fail_after
            if not refuse:
                _Judge.calls.append((mention, body))
        if refuse:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b"model unloaded")
            return
        data = json.dumps({"choices": [{"message": {"role": "assistant",
                                                    "content": ANSWERS[mention]}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    _Judge.calls, _Judge.fail_after = [], None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/v1"
    srv.shutdown()


def test_parse_verdict_real_answers():
    assert parse_verdict('{"label": "BROAD"}') == "BROAD"
    assert parse_verdict('```json\n{"label": "no_relation"}\n```') == "WRONG"
    assert parse_verdict("Label: NARROW") == "NARROW"
    assert parse_verdict("EXACT") == "EXACT"
    # echoing the label list, or nothing usable
    assert parse_verdict("EXACT, BROAD, NARROW or WRONG") is None
    assert parse_verdict('{"label": "PARTIAL"}') is None
    assert parse_verdict("Lo siento, no puedo evaluar esto.") is None
    assert parse_verdict("") is None


def test_judge_command_table_and_malformed_answer(files, server):
    with pytest.warns(UserWarning, match="W381.*Lo siento"):
        result = CliRunner().invoke(app, [
            "judge", str(files["gold"]), str(files["pred"]), "--kb", str(files["kb"]),
            "--output", str(files["out"]), "--backend", "openai", "--base-url", server,
            "--model", "judge-model", "--api-key-env", "", "--concurrency", "2",
            "--no-progress"])
    assert result.exit_code == 0, result.output
    records = read_records(files["out"])
    verdicts = {r["mention"]: r["verdict"] for r in records.values()}
    assert verdicts == {"hipertensión arterial": "CORRECT", "arteritis de la temporal": "EXACT",
                        "neumonía adquirida en la comunidad": "BROAD", "diabetes": "NARROW",
                        "ecografía abdomino-pélvica": "WRONG", "dolor de cabeza": INVALID,
                        "cefalea opresiva": "WRONG"}
    assert len(files["out"].read_text(encoding="utf-8").splitlines()) == len(CASES)
    # only the five wrong predictions with a predicted concept were asked, each once
    assert sorted(m for m, _ in _Judge.calls) == sorted(ANSWERS)
    _, body = _Judge.calls[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0.0
    assert body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] \
        == list(LABELS)
    user = next(b for m, b in _Judge.calls if m == "neumonía adquirida en la comunidad")
    question = user["messages"][-1]["content"]
    assert "[neumonía adquirida en la comunidad]{ENFERMEDAD}" in question
    assert "385093006: neumonía adquirida en la comunidad" in question
    assert "233604007: neumonía" in question
    rec = records[next(k for k, r in records.items() if r["mention"] == "dolor de cabeza")]
    assert rec["raw"] == ANSWERS["dolor de cabeza"] and rec["model"] == "judge-model"
    # the table: overall and per label, printed and saved
    summary = json.loads(files["out"].with_name("judged.summary.json").read_text())
    table = summary["table"]
    assert table["all"]["n"] == 7 and table["all"]["CORRECT"] == 1
    assert (table["all"]["EXACT"], table["all"]["BROAD"], table["all"]["NARROW"],
            table["all"]["WRONG"], table["all"][INVALID]) == (1, 1, 1, 2, 1)
    assert table["SINTOMA"]["n"] == 2 and table["SINTOMA"][INVALID] == 1
    assert table["all"]["recall@1+EXACT"] == pytest.approx(2 / 7)
    assert "ENFERMEDAD" in result.output and "PROCEDIMIENTO" in result.output

    # a re-run asks only the mention whose answer was unreadable
    ANSWERS["dolor de cabeza"] = '{"label": "WRONG"}'
    try:
        result = CliRunner().invoke(app, [
            "judge", str(files["gold"]), str(files["pred"]), "--kb", str(files["kb"]),
            "--output", str(files["out"]), "--base-url", server, "--model", "judge-model",
            "--api-key-env", "", "--no-progress"])
    finally:
        ANSWERS["dolor de cabeza"] = "Lo siento, no puedo evaluar esto."
    assert result.exit_code == 0, result.output
    assert [m for m, _ in _Judge.calls].count("dolor de cabeza") == 2
    assert len(_Judge.calls) == len(ANSWERS) + 1
    assert read_records(files["out"])[rec["key"]]["verdict"] == "WRONG"


def _items(files):
    return build_items(read_corpus(files["gold"]), read_predictions(files["pred"]),
                       load_kb(files["kb"]))


def test_resume_after_interruption(files, server):
    items, decided, _ = _items(files)
    _Judge.fail_after = 2  # the server goes away after two answers
    judge = OpenAIJudge(server, "m", api_key_env=None, concurrency=1, backoff=0.01)
    with judge, pytest.raises(RuntimeError, match=r"E386\] The judge stopped after 2 .*E074"):
        run_judge(items, decided, files["out"], judge)
    first = read_records(files["out"])
    asked_first = [m for m, _ in _Judge.calls]
    assert len(asked_first) == 2
    assert {r["mention"] for r in first.values() if r["source"] == "llm"} == set(asked_first)
    # a run killed while writing leaves half a line: it is dropped and its mention asked again
    with open(files["out"], "ab") as f:
        f.write(b'{"key": "d5|9|24|SINTOMA", "verdict": "WR')
    _Judge.fail_after = None
    judge = OpenAIJudge(server, "m", api_key_env=None, concurrency=2, backoff=0.01)
    with judge, pytest.warns(UserWarning, match="W380"):
        run = run_judge(items, decided, files["out"], judge)
    asked_second = [m for m, _ in _Judge.calls[2:]]
    # every wrong prediction was asked exactly once over the two runs
    assert sorted(asked_first + asked_second) == sorted(ANSWERS)
    assert run.skipped == 2 and run.asked == 3
    lines = files["out"].read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(CASES) and all(json.loads(line) for line in lines)
    assert sum(run.table.to_dict()["all"][v] for v in ("EXACT", "BROAD", "NARROW", "WRONG")) == 5


def test_hf_judge_scores_every_label(files):
    import torch

    from spacy_syncabel.models import tiny_llama

    items, _, _ = _items(files)
    loader = tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                        vocab_size=400)
    judge = HFJudge(loader, batch_size=3)
    answers = list(judge.stream(items))
    assert [it.key for it, _ in answers] == [it.key for it in items]
    for _, raw in answers:
        out = json.loads(raw)
        assert parse_verdict(raw) == out["label"] == max(out["logprobs"], key=out["logprobs"].get)
    # the batched (padded) scores are those of each sequence alone
    item = items[-1]
    tok, model = judge.tokenizer, judge.model
    prompt = judge.prompt_ids(item)
    with torch.inference_mode():
        for label in LABELS:
            ids = prompt + tok(label, add_special_tokens=False)["input_ids"]
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
            alone = sum(float(logp[t - 1, ids[t]]) for t in range(len(prompt), len(ids)))
            assert json.loads(answers[-1][1])["logprobs"][label] == pytest.approx(alone, abs=2e-3)


def test_output_of_another_tool_is_refused(files, server):
    items, decided, _ = _items(files)
    files["out"].write_text('{"doc_id": "d1", "codes": ["1"]}\n', encoding="utf-8")
    with OpenAIJudge(server, "m", api_key_env=None) as judge, \
            pytest.raises(ValueError, match="E382.*line 1"):
        run_judge(items, decided, files["out"], judge)
    assert _Judge.calls == []


def test_unknown_backend(files):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(app, [
            "judge", str(files["gold"]), str(files["pred"]), "--kb", str(files["kb"]),
            "--output", str(files["out"]), "--backend", "gpt"])
    assert result.exit_code != 0 and "E380" in result.output


def test_limit_judges_a_sample_and_counts_the_rest_pending(files, server):
    items, decided, _ = _items(files)
    with OpenAIJudge(server, "m", api_key_env=None, concurrency=1) as judge:
        run = run_judge(items, decided, files["out"], judge, limit=2)
    table = run.table.to_dict()["all"]
    assert run.asked == 2 and [m for m, _ in _Judge.calls] == [it.mention for it in items[:2]]
    assert table["n"] == len(CASES) and table["pending"] == len(items) - 2
    assert table["recall@1"] == pytest.approx(1 / len(CASES))
