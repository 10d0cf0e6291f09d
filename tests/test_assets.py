"""The asset manifest and `fetch`: checksums against ../shared/data, local copies, downloads
(from file:// archives, no network), skipping, repair and the error messages."""
from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest
import srsly
from typer.testing import CliRunner

from spacy_syncabel.assets import (
    AssetError,
    fetch_dataset,
    find_shared,
    load_manifest,
    md5_file,
    md5_folder,
)
from spacy_syncabel.cli import app

SHARED = find_shared()
MANIFEST = load_manifest()
ALL_ASSETS = [asset for assets in MANIFEST.values() for asset in assets]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_manifest_datasets_and_fields():
    assert set(MANIFEST) >= {"spaccc", "ncbi", "bc5cdr", "cantemist", "quaero", "gscplus"}
    for asset in ALL_ASSETS:
        assert asset.kind in ("file", "folder")
        assert len(asset.md5) == 32 and int(asset.md5, 16) >= 0
        assert asset.url and asset.url.startswith(("http://", "https://"))
        if asset.source == "archive":
            assert asset.member, asset.label
        if asset.kind == "folder":
            assert asset.source != "exact", asset.label
        if not asset.url_verified:
            assert asset.source == "derived", asset.label


@pytest.mark.parametrize("asset", ALL_ASSETS, ids=[asset.label for asset in ALL_ASSETS])
def test_manifest_md5_matches_shared_copy(asset):
    path = SHARED / asset.local if SHARED is not None else None
    if path is None or not path.exists():
        pytest.skip(f"no local copy of {asset.label}")
    assert asset.checksum(path) == asset.md5


def test_md5_folder_definition(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_bytes(b"bee")
    (tmp_path / "sub" / "a.txt").write_bytes(b"ay")
    (tmp_path / "annotation.conf").write_bytes(b"conf")
    lines = "".join(f"{rel}\t{_md5(data)}\n" for rel, data in
                    sorted([("b.txt", b"bee"), ("sub/a.txt", b"ay")]))
    assert md5_folder(tmp_path, ["*.txt"]) == _md5(lines.encode("utf-8"))
    assert md5_folder(tmp_path) != md5_folder(tmp_path, ["*.txt"])


@pytest.fixture
def fake(tmp_path):
    """A shared folder with a file and a folder, and a manifest describing them."""
    shared = tmp_path / "shared"
    (shared / "toy" / "docs").mkdir(parents=True)
    (shared / "toy" / "kb.tsv").write_bytes(b"code\tname\nC1\tfoo\n")
    for i in range(3):
        (shared / "toy" / "docs" / f"d{i}.txt").write_text(f"text {i}\n", encoding="utf-8")
        (shared / "toy" / "docs" / f"d{i}.ann").write_text(f"T1\tX 0 4\ttext\n", encoding="utf-8")
    (shared / "toy" / "docs" / "annotation.conf").write_text("[entities]\n", encoding="utf-8")
    include = ["*.txt", "*.ann"]
    manifest = {"datasets": {"toy": {"assets": [
        {"name": "kb", "kind": "file", "local": "toy/kb.tsv", "source": "exact",
         "url": "https://example.org/kb.tsv", "md5": md5_file(shared / "toy" / "kb.tsv"),
         "url_verified": True},
        {"name": "docs", "kind": "folder", "local": "toy/docs", "source": "archive",
         "url": "https://example.org/docs.zip", "member": "release/docs", "include": include,
         "md5": md5_folder(shared / "toy" / "docs", include), "url_verified": True},
    ]}}}
    path = tmp_path / "manifest.yml"
    srsly.write_yaml(path, manifest)
    return shared, path, manifest


def test_fetch_copies_then_skips(fake, tmp_path):
    shared, manifest, _ = fake
    dest = tmp_path / "assets"
    events = []
    paths = fetch_dataset("toy", dest, shared=shared, manifest=manifest,
                          report=lambda action, asset, path: events.append((action, asset.name)))
    assert paths == [dest / "toy" / "kb.tsv", dest / "toy" / "docs"]
    assert events == [("copied", "kb"), ("copied", "docs")]
    assert (dest / "toy" / "kb.tsv").read_bytes() == (shared / "toy" / "kb.tsv").read_bytes()
    # only the included files are copied (the brat .conf is not part of the asset)
    assert sorted(p.name for p in (dest / "toy" / "docs").iterdir()) == [
        "d0.ann", "d0.txt", "d1.ann", "d1.txt", "d2.ann", "d2.txt"]
    stamp = dest / ".fetched-toy"
    assert srsly.read_json(stamp)["assets"][0] == {
        "name": "kb", "path": "toy/kb.tsv", "kind": "file", "md5": md5_file(dest / "toy" / "kb.tsv")}
    mtime = stamp.stat().st_mtime_ns
    events.clear()
    fetch_dataset("toy", dest, shared=shared, manifest=manifest,
                  report=lambda action, asset, path: events.append((action, asset.name)))
    assert events == [("skipped", "kb"), ("skipped", "docs")]
    assert stamp.stat().st_mtime_ns == mtime  # unchanged content: not rewritten
    # a second fetch needs no local copy at all, even offline
    fetch_dataset("toy", dest, shared=tmp_path / "nowhere", manifest=manifest, offline=True)


def test_corrupted_destination_is_copied_again(fake, tmp_path):
    shared, manifest, _ = fake
    dest = tmp_path / "assets"
    fetch_dataset("toy", dest, shared=shared, manifest=manifest)
    (dest / "toy" / "kb.tsv").write_bytes(b"garbage")
    (dest / "toy" / "docs" / "d1.txt").write_text("changed", encoding="utf-8")
    (dest / "toy" / "docs" / "stray.txt").write_text("extra", encoding="utf-8")
    events = []
    fetch_dataset("toy", dest, shared=shared, manifest=manifest,
                  report=lambda action, asset, path: events.append(action))
    assert events == ["copied", "copied"]
    assert (dest / "toy" / "kb.tsv").read_bytes() == (shared / "toy" / "kb.tsv").read_bytes()
    assert not (dest / "toy" / "docs" / "stray.txt").exists()
    assert (dest / "toy" / "docs" / "d1.txt").read_text(encoding="utf-8") == "text 1\n"


def test_wrong_checksum_in_shared_copy_errors(fake, tmp_path):
    shared, manifest, _ = fake
    (shared / "toy" / "kb.tsv").write_bytes(b"tampered\n")
    dest = tmp_path / "assets"
    with pytest.raises(AssetError, match=r"toy/kb: the local copy .*kb\.tsv does not match"):
        fetch_dataset("toy", dest, shared=shared, manifest=manifest)
    assert not (dest / "toy" / "kb.tsv").exists()
    assert not (dest / ".fetched-toy").exists()
    (shared / "toy" / "kb.tsv").write_bytes(b"code\tname\nC1\tfoo\n")
    (shared / "toy" / "docs" / "d2.ann").write_text("T1\tX 0 3\ttex\n", encoding="utf-8")
    with pytest.raises(AssetError, match=r"toy/docs: the local copy .* does not match"):
        fetch_dataset("toy", dest, shared=shared, manifest=manifest)


def test_offline_without_local_copy_errors(fake, tmp_path):
    _, manifest, _ = fake
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AssetError) as info:
        fetch_dataset("toy", tmp_path / "assets", shared=empty, manifest=manifest, offline=True)
    message = str(info.value)
    assert "no local copy" in message and "offline" in message
    assert str(empty / "toy" / "kb.tsv") in message and "https://example.org/kb.tsv" in message


def test_derived_asset_needs_local_copy(tmp_path):
    manifest = tmp_path / "m.yml"
    srsly.write_yaml(manifest, {"datasets": {"toy": [
        {"name": "lite", "local": "toy/lite.tsv", "md5": "0" * 32, "source": "derived",
         "url": "https://example.org/", "derived_from": ["https://example.org/a.tsv"]}]}})
    with pytest.raises(AssetError, match="not published as such"):
        fetch_dataset("toy", tmp_path / "assets", shared=tmp_path, manifest=manifest)


def test_unknown_dataset(fake, tmp_path):
    _, manifest, _ = fake
    with pytest.raises(AssetError, match="Unknown dataset 'nope'"):
        fetch_dataset("nope", tmp_path, manifest=manifest)


def _zip_bytes(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_download_extracts_members_and_verifies(fake, tmp_path):
    shared, _, manifest = fake
    docs = shared / "toy" / "docs"
    archive = tmp_path / "docs.zip"
    archive.write_bytes(_zip_bytes({f"release/docs/{p.name}": p.read_bytes()
                                    for p in docs.iterdir()}))
    tar = tmp_path / "kb.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        tf.add(shared / "toy" / "kb.tsv", arcname="top/data/kb.tsv")
    assets = manifest["datasets"]["toy"]["assets"]
    assets[0].update(url=tar.as_uri(), source="archive", member="data/kb.tsv")  # below top/
    assets[1].update(url=archive.as_uri())
    path = tmp_path / "online.yml"
    srsly.write_yaml(path, manifest)
    dest = tmp_path / "assets"
    events = []
    fetch_dataset("toy", dest, shared=tmp_path / "nowhere", manifest=path,
                  report=lambda action, asset, p: events.append(action))
    assert events == ["downloaded", "downloaded"]
    assert md5_folder(dest / "toy" / "docs", ["*.txt", "*.ann"]) == assets[1]["md5"]
    assert not (dest / "toy" / "docs" / "annotation.conf").exists()
    assert md5_file(dest / "toy" / "kb.tsv") == assets[0]["md5"]
    # a public file that changed is refused and nothing is written
    assets[0]["md5"] = "f" * 32
    srsly.write_yaml(path, manifest)
    (dest / "toy" / "kb.tsv").unlink()
    with pytest.raises(AssetError, match="the manifest expects f{32}"):
        fetch_dataset("toy", dest, shared=tmp_path / "nowhere", manifest=path)
    assert not (dest / "toy" / "kb.tsv").exists()


def test_cli_fetch(fake, tmp_path):
    shared, manifest, _ = fake
    runner = CliRunner()
    dest = tmp_path / "assets"
    # the CLI uses the packaged manifest: check it on a real small dataset when present
    if SHARED is not None and (SHARED / "gsc-plus" / "GSCplus_dev_gold.tsv").exists():
        result = runner.invoke(app, ["fetch", "gscplus", str(dest), "--shared", str(SHARED)])
        assert result.exit_code == 0, result.output
        assert "copied" in result.output and "gscplus/dev" in result.output
        result = runner.invoke(app, ["fetch", "gscplus", str(dest), "--offline"])
        assert result.exit_code == 0 and "skipped" in result.output
    result = runner.invoke(app, ["fetch", "gscplus", str(tmp_path / "other"), "--shared",
                                 str(tmp_path / "nowhere"), "--offline"])
    assert result.exit_code == 1
    assert "no local copy" in result.output and "GSCplus_dev_gold.tsv" in result.output


@pytest.mark.skipif(SHARED is None or not (SHARED / "spaccc" / "texts").is_dir(),
                    reason="no local SPACCC copy")
def test_spaccc_fetch_from_local_copy(tmp_path):
    paths = fetch_dataset("spaccc", tmp_path / "assets", shared=SHARED, offline=True)
    assert len(list((tmp_path / "assets" / "spaccc" / "texts").glob("*.txt"))) == 750
    assert all(p.exists() for p in paths)


def test_failed_download_says_where_to_put_the_file(fake, tmp_path):
    shared, _, manifest = fake
    manifest["datasets"]["toy"]["assets"][0]["url"] = (tmp_path / "missing.tsv").as_uri()
    path = tmp_path / "broken.yml"
    srsly.write_yaml(path, manifest)
    with pytest.raises(AssetError, match=r"download failed .*put the local copy at .*kb\.tsv"):
        fetch_dataset("toy", tmp_path / "assets", shared=tmp_path / "nowhere", manifest=path)
