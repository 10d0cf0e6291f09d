"""Commands that fetch and prepare data: fetch, prepare-kb, prepare-corpus, ner-corpus."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..output_paths import check_outputs
from ._app import app


@app.command()
def fetch(
    dataset: str = typer.Argument(..., help="A dataset of the manifest (spaccc, ncbi, bc5cdr, cantemist, quaero, gscplus)."),
    dest: Path = typer.Argument(..., help="The assets folder; it mirrors ../shared/data (e.g. assets -> assets/spaccc/train.tsv)."),
    shared: Optional[Path] = typer.Option(None, help="Local copies (default: $SPACY_SYNCABEL_SHARED or ../shared/data)."),
    offline: bool = typer.Option(False, "--offline", help="Never download: fail when a file has no local copy."),
    timeout: float = typer.Option(60.0, help="Seconds per download request."),
) -> None:
    """Fetch a dataset's corpora and KBs: skip what DEST holds, copy local copies, else download; MD5-checked."""
    from ..assets import AssetError, fetch_dataset

    def report(action: str, asset, path: Path) -> None:
        source = {"skipped": "already there", "copied": "from the local copy",
                  "downloaded": f"from {asset.url}" + (" or a mirror" if asset.mirrors else "")}[action]
        typer.echo(f"{action:>10}  {asset.label}  {path}  ({source})")

    try:
        paths = fetch_dataset(dataset, dest, shared=shared, offline=offline, timeout=timeout,
                              report=report)
    except AssetError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{dataset}: {len(paths)} assets in {dest}")


@app.command("prepare-kb")
def prepare_kb(
    dataset: str = typer.Argument(..., help="spaccc, ncbi, cantemist or quaero."),
    assets: Path = typer.Argument(..., help="The assets folder (laid out as ../shared/data)."),
    output: Path = typer.Argument(..., help="KB folder to write (kb.jsonl + meta.json)."),
) -> None:
    """Load the dataset's KB from its source format, report what was dropped, save it."""
    import srsly

    from ..datasets import get_dataset
    from ..kb import read_file

    spec = get_dataset(dataset)
    check_outputs({f"OUTPUT/{name}": output / name
                   for name in ("kb.jsonl", "meta.json", "report.json")},
                  {"the dataset's KB": assets / spec.kb})
    kb = read_file(assets / spec.kb, format=spec.kb_format)
    kb.to_disk(output)
    srsly.write_json(output / "report.json", kb.report)
    typer.echo(f"KB {spec.kb}: {len(kb)} codes, {len(kb.names())} unambiguous names, "
               f"groups {kb.groups} -> {output}")


@app.command("prepare-corpus")
def prepare_corpus(
    dataset: str = typer.Argument(..., help="spaccc, ncbi, cantemist or quaero."),
    assets: Path = typer.Argument(..., help="The assets folder (laid out as ../shared/data)."),
    output: Path = typer.Argument(..., help="Folder for train.jsonl, dev.jsonl and test.jsonl."),
    seed: int = typer.Option(0, help="Seed of the dev hold-out (datasets without a dev split)."),
) -> None:
    """Convert the dataset's splits to the project's JSONL corpus format."""
    from ..corpus import read_corpus, write_jsonl
    from ..datasets import get_dataset, split_dev

    spec = get_dataset(dataset)
    check_outputs({f"OUTPUT/{name}.jsonl": output / f"{name}.jsonl"
                   for name in ("train", "dev", "test")},
                  {f"the {name} split": assets / split if split else None
                   for name, split in (("train", spec.train), ("dev", spec.dev),
                                       ("test", spec.test))})
    train = read_corpus(assets / spec.train)
    if spec.dev is None:
        train, dev = split_dev(train, spec.dev_fraction, seed)
    else:
        dev = read_corpus(assets / spec.dev)
    test = read_corpus(assets / spec.test)
    output.mkdir(parents=True, exist_ok=True)
    for name, docs in (("train", train), ("dev", dev), ("test", test)):
        write_jsonl(docs, output / f"{name}.jsonl")
        typer.echo(f"{name}: {len(docs)} docs, {sum(len(d.mentions) for d in docs)} mentions")


def _extra_train(value: str, default: tuple) -> tuple:
    """``--extra-train``: auto (the dataset's default), none, or comma-separated split names."""
    from ..errors import Errors

    names = tuple(s.strip() for s in value.split(",") if s.strip())
    if names == ("auto",):
        return tuple(default)
    if names in ((), ("none",)):
        return ()
    if {"auto", "none"} & set(names) or any("/" in n or "\\" in n for n in names):
        raise typer.BadParameter(Errors.E601.format(value=value,
                                                    default=",".join(default) or "none"))
    return names


@app.command("ner-corpus")
def ner_corpus(
    dataset: str = typer.Argument(..., help="spaccc, ncbi, cantemist or quaero: its language and label map."),
    corpus_dir: Path = typer.Argument(..., help="Folder holding the splits as JSONL (train.jsonl, dev.jsonl)."),
    output: Path = typer.Argument(..., help="Folder for {split}.spacy and config.cfg."),
    config: Optional[Path] = typer.Option(None, "--config", help="NER config (e.g. configs/ner.cfg): copied to OUTPUT/config.cfg with the dataset's language and its NER settings (spacy_syncabel/datasets.py: CANTEMIST's parameter averaging and larger hash-embedding tables)."),
    splits: str = typer.Option("train,dev", "--splits", help="Comma-separated split names."),
    extra_train: str = typer.Option("none", "--extra-train", help="Splits whose documents are added to the NER's training documents only: auto (the dataset's default: test for CANTEMIST, whose dev1 was released for training; none elsewhere), none, or comma-separated names of CORPUS_DIR/NAME.jsonl. Those splits then no longer measure the NER."),
    spans_key: Optional[str] = typer.Option(None, "--spans-key", help="Also keep every mention, nested and overlapping ones, in doc.spans[KEY]: a span categorizer's training data (with --config configs/spancat.cfg, KEY sc). Not for a corpus with annotation layers (SPACCC)."),
) -> None:
    """Write the NER's training data: the splits as .spacy with labels mapped to the linker's groups."""
    import srsly

    from ..datasets import get_dataset
    from ..training.ner_corpus import write_ner_corpus

    spec = get_dataset(dataset)
    names = [s for s in splits.split(",") if s]
    extra = _extra_train(extra_train, spec.ner_extra_train)
    inputs = {f"CORPUS_DIR/{name}.jsonl": corpus_dir / f"{name}.jsonl" for name in [*names, *extra]}
    check_outputs({**{f"OUTPUT/{name}.spacy": output / f"{name}.spacy" for name in names},
                   "OUTPUT/config.cfg": output / "config.cfg"}, {**inputs, "--config": config})
    summary = write_ner_corpus(corpus_dir, output, lang=spec.lang, label_map=spec.label_map,
                               config=config, splits=names, extra_train=extra,
                               settings=spec.ner_settings, spans_key=spans_key)
    if config is not None and spec.ner_settings:
        summary["config_settings"] = dict(spec.ner_settings)
    typer.echo(srsly.json_dumps(summary, indent=2))
