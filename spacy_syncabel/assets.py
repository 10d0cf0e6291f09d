"""Fetch the project's corpora and knowledge bases, checked by MD5.

The manifest ``assets.yml`` (package data) names, per dataset, every file or folder with its public
address and checksum (see the comments at its top for the fields). :func:`fetch_dataset` puts a
dataset's assets into a destination folder, taking each one

1. from the destination itself when it is already there with the right checksum (skipped);
2. else from the local copy in the shared data folder (``--shared``, ``$SPACY_SYNCABEL_SHARED`` or
   ``../shared/data``), verified before it is copied;
3. else, when online, from its public URL (extracting ``member`` from a zip or tar archive),
   verified after the download.

Checksums: the MD5 of a file's bytes; for a folder, the MD5 of the lines
``"<relative posix path>\\t<md5 of the file>\\n"`` of its included files, sorted by path.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import srsly

MANIFEST_PATH = Path(__file__).with_name("assets.yml")
SHARED_ENV = "SPACY_SYNCABEL_SHARED"
DEFAULT_TIMEOUT = 60.0
_CHUNK = 1 << 20

PathLike = Union[str, "os.PathLike[str]"]
Reporter = Callable[[str, "Asset", Path], None]


class AssetError(RuntimeError):
    """An asset could not be fetched or did not match its checksum."""


class DownloadError(AssetError):
    """No URL of an asset could be downloaded."""


@dataclass
class Asset:
    """One entry of the manifest."""

    dataset: str
    name: str
    local: str
    md5: str
    kind: str = "file"
    url: Optional[str] = None
    mirrors: Tuple[str, ...] = ()
    member: Optional[str] = None
    include: Tuple[str, ...] = ()
    source: str = "exact"
    path: Optional[str] = None
    url_verified: bool = False
    extra: Dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, dataset: str, data: Dict[str, object]) -> "Asset":
        known = {"name", "local", "md5", "kind", "url", "mirrors", "member", "include", "source",
                 "path", "url_verified"}
        missing = [key for key in ("name", "local", "md5") if not data.get(key)]
        if missing:
            raise AssetError(f"Manifest entry of dataset {dataset!r} lacks {', '.join(missing)}: {data}")
        kind = str(data.get("kind", "file"))
        if kind not in ("file", "folder"):
            raise AssetError(f"{dataset}/{data['name']}: kind must be file or folder, not {kind!r}")
        source = str(data.get("source", "exact"))
        if source not in ("exact", "archive", "derived"):
            raise AssetError(f"{dataset}/{data['name']}: unknown source {source!r}")
        return cls(
            dataset=dataset,
            name=str(data["name"]),
            local=str(data["local"]),
            md5=str(data["md5"]).lower(),
            kind=kind,
            url=str(data["url"]) if data.get("url") else None,
            mirrors=tuple(str(url) for url in data.get("mirrors") or ()),  # type: ignore[union-attr]
            member=str(data["member"]) if data.get("member") else None,
            include=tuple(str(pattern) for pattern in data.get("include") or ()),  # type: ignore[union-attr]
            source=source,
            path=str(data["path"]) if data.get("path") else None,
            url_verified=bool(data.get("url_verified", False)),
            extra={key: value for key, value in data.items() if key not in known},
        )

    @property
    def target(self) -> str:
        """Path relative to the destination (assets) folder; by default ``local``, so that the
        assets folder mirrors ``../shared/data`` as ``spacy_syncabel.datasets`` expects."""
        return self.path or self.local

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.name}"

    def checksum(self, path: Path) -> Optional[str]:
        """MD5 of ``path`` as defined for this asset's kind, or None when it is absent."""
        if self.kind == "folder":
            return md5_folder(path, self.include) if path.is_dir() else None
        return md5_file(path) if path.is_file() else None


# ----------------------------------------------------------------------------------- checksums

def md5_file(path: PathLike) -> str:
    """MD5 (hex) of a file's bytes."""
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _included(relpath: str, include: Sequence[str]) -> bool:
    if not include:
        return True
    name = relpath.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(relpath, pattern)
               for pattern in include)


def folder_files(folder: PathLike, include: Sequence[str] = ()) -> List[Tuple[str, Path]]:
    """The included files below ``folder``: sorted (relative posix path, path) pairs."""
    root = Path(folder)
    files = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            path = Path(dirpath) / filename
            rel = path.relative_to(root).as_posix()
            if _included(rel, include):
                files.append((rel, path))
    files.sort()
    return files


def md5_folder(folder: PathLike, include: Sequence[str] = ()) -> str:
    """MD5 of the lines ``"<relative posix path>\\t<md5>\\n"`` of the included files, sorted."""
    digest = hashlib.md5()
    for rel, path in folder_files(folder, include):
        digest.update(f"{rel}\t{md5_file(path)}\n".encode("utf-8"))
    return digest.hexdigest()


# ------------------------------------------------------------------------------------ manifest

def load_manifest(path: Optional[PathLike] = None) -> Dict[str, List[Asset]]:
    """Datasets of the manifest (default: the packaged ``assets.yml``) -> their assets."""
    data = srsly.read_yaml(Path(path) if path is not None else MANIFEST_PATH)
    datasets = (data or {}).get("datasets")
    if not isinstance(datasets, dict):
        raise AssetError(f"{path or MANIFEST_PATH}: no `datasets` mapping")
    manifest: Dict[str, List[Asset]] = {}
    for name, entry in datasets.items():
        assets = entry.get("assets") if isinstance(entry, dict) else entry
        if not isinstance(assets, list):
            raise AssetError(f"Dataset {name!r} of the manifest has no list of assets")
        manifest[str(name)] = [Asset.from_dict(str(name), item) for item in assets]
        names = [asset.name for asset in manifest[str(name)]]
        if len(set(names)) != len(names):
            raise AssetError(f"Dataset {name!r} of the manifest repeats an asset name")
    return manifest


def dataset_assets(dataset: str, manifest: Optional[Union[PathLike, Dict[str, List[Asset]]]] = None
                   ) -> List[Asset]:
    loaded = manifest if isinstance(manifest, dict) else load_manifest(manifest)
    if dataset not in loaded:
        raise AssetError(f"Unknown dataset {dataset!r}; the manifest has: {', '.join(sorted(loaded))}")
    return loaded[dataset]


def default_shared_candidates() -> List[Path]:
    """Where the shared data folder is looked for, in order."""
    candidates = []
    if os.environ.get(SHARED_ENV):
        candidates.append(Path(os.environ[SHARED_ENV]))
    candidates.append(Path.cwd() / ".." / "shared" / "data")
    repo_root = Path(__file__).resolve().parent.parent
    candidates.append(repo_root / ".." / "shared" / "data")
    return candidates


def find_shared(shared: Optional[PathLike] = None) -> Optional[Path]:
    """The shared data folder: ``shared`` if given, else the first existing default candidate."""
    if shared is not None:
        return Path(shared)
    for candidate in default_shared_candidates():
        if candidate.is_dir():
            return candidate.resolve()
    return None


# ------------------------------------------------------------------------------------ fetching

def _replace(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``, replacing what is there (file or folder)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists() or dest.is_symlink():
        dest.unlink()
    os.replace(src, dest)


def _copy_local(asset: Asset, src: Path, dest: Path) -> None:
    found = asset.checksum(src)
    if found != asset.md5:
        raise AssetError(
            f"{asset.label}: the local copy {src} does not match the manifest (md5 {found}, "
            f"expected {asset.md5}). It differs from the public file: restore it"
            + (f" from {asset.url}" if asset.url and asset.source != "derived" else "")
            + " or remove it.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        staged = tmp / dest.name
        if asset.kind == "folder":
            include = asset.include

            def ignore(directory: str, names: List[str]) -> List[str]:
                base = Path(directory)
                ignored = []
                for name in names:
                    path = base / name
                    if not path.is_dir() and not _included(path.relative_to(src).as_posix(), include):
                        ignored.append(name)
                return ignored

            shutil.copytree(src, staged, ignore=ignore if include else None, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, staged)
        _replace(staged, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(url: str, path: Path, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "spacy-syncabel-fetch"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(path, "wb") as out:
        shutil.copyfileobj(response, out, _CHUNK)


def _download_any(asset: Asset, cache: Dict[str, Path], workdir: Path, timeout: float) -> Path:
    """Download the asset's URL (or a mirror) once per call; the path of the downloaded file."""
    urls = [url for url in (asset.url, *asset.mirrors) if url]
    for url in urls:
        if url in cache:
            return cache[url]
    errors = []
    for url in urls:
        path = workdir / f"download{len(cache)}"
        try:
            _download(url, path, timeout)
        except Exception as error:  # noqa: BLE001 - reported below with every URL tried
            errors.append(f"{url}: {error}")
            continue
        for other in urls:
            cache[other] = path
        return path
    raise DownloadError(f"{asset.label}: download failed ({'; '.join(errors)})")


def _norm_member(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith("./") or name.startswith("/"):
        name = name[1:] if name.startswith("/") else name[2:]
    return name.rstrip("/")


def _archive_names(archive: Path) -> Tuple[str, List[str]]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return "zip", [info.filename for info in zf.infolist() if not info.is_dir()]
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            return "tar", [member.name for member in tf.getmembers() if member.isfile()]
    raise AssetError(f"{archive} is neither a zip nor a tar archive")


def _resolve_member(asset: Asset, names: Iterable[str]) -> str:
    """The archive path of ``asset.member`` (also found below one extra top-level folder)."""
    wanted = _norm_member(asset.member or "")
    normalized = [_norm_member(name) for name in names]
    if asset.kind == "file":
        if wanted in normalized:
            return wanted
        matches = sorted({name for name in normalized if name.endswith("/" + wanted)})
    else:
        prefix = wanted + "/"
        if any(name.startswith(prefix) for name in normalized):
            return wanted
        matches = sorted({name[: name.index("/" + prefix) + 1 + len(wanted)]
                          for name in normalized if "/" + prefix in name})
    if len(matches) == 1:
        return matches[0]
    raise AssetError(f"{asset.label}: {asset.member!r} is not in the archive from {asset.url}"
                     + (f" (candidates: {matches})" if matches else ""))


def _extract(asset: Asset, archive: Path, staged: Path) -> None:
    kind, names = _archive_names(archive)
    member = _resolve_member(asset, names)
    selected: List[Tuple[str, str]] = []  # (name in archive, relative output path)
    for name in names:
        norm = _norm_member(name)
        if asset.kind == "file" and norm == member:
            selected.append((name, ""))
        elif asset.kind == "folder" and norm.startswith(member + "/"):
            rel = norm[len(member) + 1:]
            if ".." not in rel.split("/") and _included(rel, asset.include):
                selected.append((name, rel))
    if not selected:
        raise AssetError(f"{asset.label}: nothing to extract for {asset.member!r} from {asset.url}")
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for name, rel in selected:
                out = staged / rel if rel else staged
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    else:
        with tarfile.open(archive) as tf:
            for name, rel in selected:
                out = staged / rel if rel else staged
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(name)
                if src is None:
                    raise AssetError(f"{asset.label}: cannot read {name} from {asset.url}")
                with src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)


def _fetch_remote(asset: Asset, dest: Path, cache: Dict[str, Path], workdir: Path,
                  timeout: float) -> None:
    downloaded = _download_any(asset, cache, workdir, timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        staged = tmp / dest.name
        if asset.member:
            _extract(asset, downloaded, staged)
        elif asset.kind == "folder":
            raise AssetError(f"{asset.label}: a folder asset needs `member` (a folder in an archive)")
        else:
            shutil.copyfile(downloaded, staged)
        found = asset.checksum(staged)
        if found != asset.md5:
            what = f"member {asset.member!r} of " if asset.member else ""
            raise AssetError(f"{asset.label}: {what}{asset.url} has md5 {found}, the manifest "
                             f"expects {asset.md5}: the public file changed or the download is "
                             "corrupt; nothing was written.")
        _replace(staged, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _missing_message(asset: Asset, shared: Optional[Path], offline: bool) -> str:
    where = (f"{shared / asset.local}" if shared is not None else
             f"<shared data folder>/{asset.local} (pass --shared PATH or set ${SHARED_ENV}; "
             f"looked in {', '.join(str(path) for path in default_shared_candidates())})")
    if asset.source == "derived":
        sources = asset.extra.get("derived_from") or [asset.url]
        return (f"{asset.label}: no local copy at {where}, and this file is not published as such "
                f"(derived from {', '.join(str(source) for source in sources)}): put the copy "
                f"(md5 {asset.md5}) there.")
    reason = "offline" if offline else "no URL in the manifest"
    return (f"{asset.label}: no local copy at {where} and {reason}; put the file there "
            f"(md5 {asset.md5}, from {asset.url}"
            + (f", member {asset.member}" if asset.member else "") + ") or fetch online.")


def fetch_dataset(dataset: str, dest: PathLike, shared: Optional[PathLike] = None,
                  offline: bool = False, *, manifest: Optional[PathLike] = None,
                  timeout: float = DEFAULT_TIMEOUT, report: Optional[Reporter] = None,
                  stamp: bool = True) -> List[Path]:
    """Put every asset of ``dataset`` into ``dest``; the list of their paths.

    Each asset is skipped when ``dest`` already holds it with the right checksum, else copied
    from ``shared`` (default: ``$SPACY_SYNCABEL_SHARED``, ``../shared/data`` from the working
    directory or from the repository) after verifying the copy, else downloaded from its URL
    (not when ``offline``) and verified. ``report(action, asset, path)`` is called per asset with
    action ``skipped``, ``copied`` or ``downloaded``. Raises :class:`AssetError` on a checksum
    mismatch or when an asset cannot be found. When every asset is in place and ``stamp``, writes
    ``dest/.fetched-<dataset>`` (JSON: each asset's path and md5; rewritten only when it changes),
    the output project.yml's ``fetch`` command declares.
    """
    assets = dataset_assets(dataset, manifest)
    dest_root = Path(dest)
    shared_root = find_shared(shared)
    paths: List[Path] = []
    cache: Dict[str, Path] = {}
    workdir: Optional[Path] = None
    try:
        for asset in assets:
            target = dest_root / asset.target
            if asset.checksum(target) == asset.md5:
                action = "skipped"
            elif shared_root is not None and (shared_root / asset.local).exists():
                _copy_local(asset, shared_root / asset.local, target)
                action = "copied"
            elif offline or asset.source == "derived" or not asset.url:
                raise AssetError(_missing_message(asset, shared_root, offline))
            else:
                if workdir is None:
                    workdir = Path(tempfile.mkdtemp(prefix="spacy-syncabel-fetch-"))
                try:
                    _fetch_remote(asset, target, cache, workdir, timeout)
                except DownloadError as error:
                    where = (shared_root / asset.local if shared_root is not None
                             else f"<shared data folder>/{asset.local}")
                    raise DownloadError(f"{error}. Without network, put the local copy at {where} "
                                        f"(md5 {asset.md5}) or pass --shared PATH.") from error
                action = "downloaded"
            if report is not None:
                report(action, asset, target)
            paths.append(target)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    if stamp:
        write_stamp(dataset, dest_root, assets)
    return paths


def stamp_path(dataset: str, dest: PathLike) -> Path:
    """The file marking that ``dataset`` was fetched into ``dest``."""
    return Path(dest) / f".fetched-{dataset}"


def write_stamp(dataset: str, dest: PathLike, assets: Sequence[Asset]) -> Path:
    path = stamp_path(dataset, dest)
    content = srsly.json_dumps(
        {"dataset": dataset,
         "assets": [{"name": a.name, "path": Path(a.target).as_posix(), "kind": a.kind,
                     "md5": a.md5} for a in assets]}, indent=2) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != content:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return path


def verify_shared(shared: Optional[PathLike] = None, manifest: Optional[PathLike] = None
                  ) -> Dict[str, Optional[bool]]:
    """Checksum of every manifest entry's local copy: label -> True/False (None: absent)."""
    root = find_shared(shared)
    result: Dict[str, Optional[bool]] = {}
    for assets in load_manifest(manifest).values():
        for asset in assets:
            path = root / asset.local if root is not None else None
            found = asset.checksum(path) if path is not None else None
            result[asset.label] = None if found is None else found == asset.md5
    return result
