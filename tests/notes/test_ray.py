"""`link --ray`: two actors on a local Ray instance give the single-process records; a killed
actor loses no note and duplicates none; a restarted job skips what is written."""
import json
import os
import signal
import threading
import time
import warnings

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'spacy-syncabel[ray]'")
pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'ray[data]>=2.9'")
psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow  # a local Ray and actors that each load the pipeline: ~1-3 min

from spacy_syncabel.notes import iter_records  # noqa: E402
from spacy_syncabel.notes.command import run_link  # noqa: E402

from ..conftest import DATA, KB_ROWS, needs_data  # noqa: E402
from .conftest import NOTES, same_records  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def _shard_records(folder):
    return [r for part in sorted(folder.glob("part-*.jsonl")) for r in iter_records(part)]




def _notes(tmp_path, n):
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(n):
        (folder / f"n{i:02d}.txt").write_text(NOTES[i % len(NOTES)], encoding="utf-8")
    (folder / "latin.txt").write_bytes(b"fiebre \xff")  # not UTF-8: an error row
    return folder


def test_two_actors_give_the_single_process_records_and_resume(local_ray, pipeline_dir,
                                                               tmp_path):
    folder = _notes(tmp_path, len(NOTES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_link(pipeline_dir, folder, tmp_path / "single.jsonl", progress=False, batch_size=4)
        # a shard with the first 5 records: the job must skip them
        single = list(iter_records(tmp_path / "single.jsonl"))
        out = tmp_path / "ray"
        out.mkdir()
        (out / "part-00000.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in single[:5]), encoding="utf-8")
        result = run_link(pipeline_dir, folder, out, ray="local", concurrency=2, batch_size=4,
                          progress=False)
    assert result["skipped"] == 5 and result["linked"] == len(NOTES) - 5
    by_id = {r["id"]: r for r in single}
    shards = _shard_records(out)
    assert sorted(r["id"] for r in shards) == sorted(by_id)
    assert all(same_records(r, by_id[r["id"]]) for r in shards)
    assert sorted(p.name for p in out.glob("part-*.jsonl")) == ["part-00000.jsonl",
                                                                 "part-00001.jsonl"]
    errors = list(iter_records(out / "errors.jsonl"))
    assert [e["id"] for e in errors] == ["latin"] and "E152" in errors[0]["error"]


def _actor_pids():
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline", "name"]):
        text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["name"] or "")
        if "NoteLinker" in text:
            pids.append(proc.info["pid"])
    return pids


def test_killing_an_actor_mid_job_still_links_every_note_once(local_ray, pipeline_dir,
                                                              tmp_path):
    n = 40
    folder = _notes(tmp_path, n)
    out = tmp_path / "ray"
    result = {}

    def job():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result.update(run_link(pipeline_dir, folder, out, ray="local", concurrency=2,
                                   batch_size=2, progress=False, delay=0.4))

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.time() + 180
    killed = None
    seen = {"written": 0, "actors": 0}
    actors_since = None
    while time.time() < deadline and thread.is_alive() and killed is None:
        written = len(_shard_records(out)) if out.exists() else 0
        pids = _actor_pids()
        seen = {"written": max(seen["written"], written), "actors": max(seen["actors"], len(pids))}
        if pids and actors_since is None:
            actors_since = time.time()
        # an actor busy with its batch (some records written, or alive for 2 s of a job whose
        # batches take 4 s each: the driver may write its shards late): kill it (the pool
        # restarts it and retries its batch; the other actor, when there is one, goes on)
        if pids and (written >= 6 or time.time() - actors_since >= 2.0):
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    thread.join(timeout=300)
    assert killed is not None, f"the job ended before an actor could be killed (seen: {seen})"
    assert not thread.is_alive()
    ids = [r["id"] for r in _shard_records(out)]
    assert sorted(ids) == [f"n{i:02d}" for i in range(n)]  # every note exactly once
    assert result["linked"] == n and result["failed"] == 1


@needs_data
def test_two_actors_on_200_spaccc_notes(local_ray, pipeline_dir, tmp_path):
    """200 real SPACCC notes (their first 600 characters, to keep the test short) linked by
    2 actors give the records of the single-process run."""
    folder = tmp_path / "spaccc"
    folder.mkdir()
    for path in sorted((DATA / "spaccc" / "texts").glob("*.txt"))[:200]:
        (folder / path.name).write_text(path.read_text("utf-8")[:600], encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_link(pipeline_dir, folder, tmp_path / "single.jsonl", progress=False, batch_size=8)
        result = run_link(pipeline_dir, folder, tmp_path / "ray", ray="local", concurrency=2,
                          batch_size=8, progress=False)
    single = {r["id"]: r for r in iter_records(tmp_path / "single.jsonl")}
    shards = _shard_records(tmp_path / "ray")
    assert result["linked"] == 200 and len(single) == 200
    assert sorted(r["id"] for r in shards) == sorted(single)
    assert sum(len(r["entities"]) for r in shards) > 100  # the ruler finds KB names in them
    assert all(same_records(r, single[r["id"]]) for r in shards)


def test_ray_actors_import_the_code_file_and_copy_its_span_attrs(local_ray, pipeline_dir,
                                                                 tmp_path):
    """`--ray --code FILE --span-attrs A`: each actor imports the file that registers the
    pipeline's own component, and the records carry its attribute as the single run's do."""
    import uuid

    from ..test_user_code import code_file
    from .test_ecosystem import with_component

    name = f"comp_{uuid.uuid4().hex[:8]}"
    code = code_file(tmp_path, name)
    pipeline = with_component(pipeline_dir, tmp_path / "pipeline", name)
    folder = tmp_path / "notes"
    folder.mkdir()
    for i, (_, kb_name, _) in enumerate(KB_ROWS[:6]):
        (folder / f"n{i}.txt").write_text(f"Paciente {'sin' if i % 2 else 'con'} {kb_name}.",
                                          encoding="utf-8")
    kw = dict(progress=False, batch_size=2, span_attrs=f"negated_{name}", code=code)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_link(pipeline, folder, tmp_path / "single.jsonl", **kw)
        result = run_link(pipeline, folder, tmp_path / "ray", ray="local", concurrency=1, **kw)
    assert result["linked"] == 6 and result["failed"] == 0
    single = {r["id"]: r for r in iter_records(tmp_path / "single.jsonl")}
    shards = {r["id"]: r for r in _shard_records(tmp_path / "ray")}
    assert shards == single
    negated = sorted((r["id"], e["attrs"][f"negated_{name}"]) for r in shards.values()
                     for e in r["entities"])
    assert negated == [(f"n{i}", bool(i % 2)) for i in range(6)]
    with pytest.raises(ValueError, match="E451"):  # checked before any actor starts
        run_link(pipeline, folder, tmp_path / "ray2", ray="local", **{**kw, "span_attrs": "nope"})
    assert not (tmp_path / "ray2").exists()
