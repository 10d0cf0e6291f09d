"""Commands that train, assemble or package pipelines: train, dpo, calibrate, train-ner, assemble, package."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..output_paths import check_outputs
from ._app import app


_RECIPE_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def _printed_instead(recipe, dry_run: bool, output: Optional[Path]) -> bool:
    """With --dry-run: print the resolved recipe as JSON (True: nothing else to do); without
    it, --output is required."""
    if dry_run:
        import srsly

        typer.echo(srsly.json_dumps(recipe.to_dict(), indent=2))
        return True
    if output is None:
        raise typer.BadParameter("--output is required (unless --dry-run)")
    return False


@app.command(context_settings=_RECIPE_ARGS)
def train(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="The recipe: a config file such as configs/linker_cpu.cfg (sections paths, model, training, calibration, linker)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder: model-best, model-last, checkpoints, training_log.jsonl."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the fully resolved recipe as JSON and exit (no weights or data are loaded)."),
    num_threads: Optional[int] = typer.Option(None, "--threads", help="torch threads (default: available cores / local processes)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the Trainer's progress bar."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Resume from the newest checkpoint in OUTPUT/checkpoints."),
) -> None:
    """Fine-tune a causal LM for syncabel_linker from a recipe; writes spaCy pipelines
    OUTPUT/model-best and OUTPUT/model-last. Extra `--section.key value` arguments override the
    recipe's values (e.g. --paths.train corpus/train.jsonl --training.lr 3e-5)."""
    import srsly

    from ..training.recipe import parse_overrides, resolve_train_recipe

    recipe = resolve_train_recipe(config, parse_overrides(ctx.args), num_threads=num_threads,
                                  progress=progress, resume=resume)
    if _printed_instead(recipe, dry_run, output):
        return
    from ..training import train_linker
    from ..training.recipe import optional_path, require_paths

    require_paths(recipe.paths, ("kb", "train"))
    kb, train_corpus = Path(recipe.paths["kb"]), Path(recipe.paths["train"])
    dev, synthetic = optional_path(recipe.paths["dev"]), optional_path(recipe.paths["synthetic"])
    inputs = {"--paths.kb": kb, "--paths.train": train_corpus, "--paths.dev": dev,
              "--paths.synthetic": synthetic, "CONFIG": config,
              "--model.base_model": (Path(recipe.base_model)
                                     if Path(recipe.base_model).exists() else None)}
    check_outputs({"--output": output}, inputs, whole=False)  # resumed: written inside
    check_outputs({f"OUTPUT/{name}": output / name for name in
                   ("model-best", "model-last", "checkpoints", "training_log.jsonl")}, inputs)
    summary = train_linker(kb, train_corpus, output, dev=dev, synthetic=synthetic,
                           kb_languages=recipe.kb_languages, base_model=recipe.base_model,
                           lang=recipe.lang, config=recipe.config, label_map=recipe.label_map,
                           linker_config=dict(recipe.linker_config), recipe=recipe.to_dict())
    short = {k: v for k, v in summary.items() if not isinstance(v, dict)}
    typer.echo(srsly.json_dumps(short, indent=2))  # each process reports its own view


@app.command(context_settings=_RECIPE_ARGS)
def dpo(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="The recipe: a config file such as configs/dpo_cpu.cfg or configs/dpo_angel.cfg (sections paths, mining, training)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder: model-best, round-N/pairs.jsonl, rounds.json."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the fully resolved recipe as JSON and exit (no weights or data are loaded)."),
    num_threads: Optional[int] = typer.Option(None, "--threads", help="torch threads (default: available cores / local processes)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the trainer's progress bar."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip the rounds OUTPUT/rounds.json records as finished."),
) -> None:
    """Preference optimization after SFT from a recipe: DPO on hard negatives mined from the
    linker's own beams; writes OUTPUT/model-best. Extra `--section.key value` arguments
    override the recipe's values (e.g. --paths.pipeline training/spaccc/model-best)."""
    import srsly

    from ..training.recipe import parse_overrides, resolve_dpo_recipe

    recipe = resolve_dpo_recipe(config, parse_overrides(ctx.args), num_threads=num_threads,
                                progress=progress, resume=resume)
    if _printed_instead(recipe, dry_run, output):
        return
    from ..training.dpo import train_dpo
    from ..training.recipe import optional_path, require_paths

    require_paths(recipe.paths, ("pipeline", "train"))
    pipeline, train_corpus = Path(recipe.paths["pipeline"]), Path(recipe.paths["train"])
    dev = optional_path(recipe.paths["dev"])
    inputs = {"--paths.pipeline": pipeline, "--paths.train": train_corpus, "--paths.dev": dev,
              "CONFIG": config}
    check_outputs({"--output": output}, inputs, whole=False)  # resumed: written inside
    check_outputs({"OUTPUT/model-best": output / "model-best",
                   "OUTPUT/rounds.json": output / "rounds.json"}, inputs)
    state = train_dpo(pipeline, train_corpus, output, dev=dev, config=recipe.config,
                      recipe=recipe.to_dict())
    short = {k: v for k, v in state.items() if k not in ("config", "rounds")}
    short["rounds"] = [{k: v for k, v in r.items() if k != "last_log"} for r in state["rounds"]]
    typer.echo(srsly.json_dumps(short, indent=2))


@app.command()
def calibrate(
    pipeline: Path = typer.Argument(..., help="A pipeline folder holding syncabel_linker (candidate mode)."),
    dev: Path = typer.Argument(..., help="Dev corpus (any format `read_corpus` reads)."),
    dev_size: int = typer.Option(0, help="Dev mentions used (0: all)."),
    candidates: Optional[int] = typer.Option(None, help="Override the number of TF-IDF candidates first (saved too)."),
    cascade: bool = typer.Option(True, "--cascade/--no-cascade", help="Also choose the cascade's cut-off (mentions the dictionary or the retriever settle skip the LM) and save it on."),
    cascade_tolerance: float = typer.Option(0.2, "--cascade-tolerance", help="Dev Recall@1 points the cascade may lose against the full model (0: none)."),
    threads: int = typer.Option(0, help="torch threads (0: torch's default)."),
    prior: bool = typer.Option(True, "--prior/--no-prior", help="Choose the prior's weight and the cascade's cut-off (--no-prior: keep them, fit the probability only)."),
    probability: bool = typer.Option(True, "--probability/--no-probability", help="Then fit one calibrated probability per linked mention (ent._.syncabel[i]['probability'], ent._.kb_ents) on the dev set."),
    method: str = typer.Option("platt", "--method", help="Probability calibration: platt or isotonic (one map per path: lm, dictionary, retriever)."),
    target_precision: float = typer.Option(0.0, "--target-precision", help="Choose the NIL threshold: the lowest probability whose dev precision over linked mentions reaches P (0: no NIL threshold)."),
    train: Optional[List[Path]] = typer.Option(None, "--train", help="The linker's training corpus (repeatable): the probability and NIL threshold are fitted on the dev-masked view, where KB names and aliases that only dev mentions gave are hidden, as unseen text meets the KB; with composite_expand on, the learned composite gate is fitted on its coordinated mentions (composite_gate.json)."),
    probability_rule: str = typer.Option("auto", "--probability-rule", help="The top candidate's probability: maps (one monotone map per path), features (one logistic regression over a few n-best features of every path) or auto (the one with the lower 5-fold cross-validated log loss on dev)."),
    lm_ranked: bool = typer.Option(True, "--lm-ranked/--no-lm-ranked", help="With the cascade on, link dev a second time with the LM ranking every mention and fit the LM path's probability on every mention the dictionary does not settle (several times the LM path's own dev mentions)."),
) -> None:
    """Choose the TF-IDF prior's weight for candidate reranking, then the cascade's cut-off, then the calibrated probability and NIL threshold, on the dev set; saves them in PIPELINE."""
    from ..corpus import read_corpus
    from ..training.probability import calibrate_pipeline_probability, probability_summary

    check_outputs({"PIPELINE (saved again in place)": pipeline}, {"the dev corpus": dev,
                  **{f"the training corpus {p}": p for p in train or ()}})
    if threads:
        import torch

        torch.set_num_threads(threads)
    dev_docs = read_corpus(dev)
    train_docs = [d for p in train for d in read_corpus(p)] if train else None
    if prior:
        _calibrate_prior(pipeline, dev_docs, dev_size, candidates, cascade, cascade_tolerance,
                         train_docs)
    if probability:
        cal = calibrate_pipeline_probability(pipeline, dev_docs, method=method,
                                             target_precision=target_precision or None,
                                             train_docs=train_docs, rule=probability_rule,
                                             lm_ranked=lm_ranked)
        masking = cal.fit.get("dev_masking")
        if masking is not None and not (masking["hidden_kb_names"] or masking["hidden_aliases"]):
            import warnings

            from ..errors import Warnings

            warnings.warn(Warnings.W611)
        typer.echo(probability_summary(cal))


def _calibrate_prior(pipeline: Path, dev_docs, dev_size: int, candidates: Optional[int],
                     cascade: bool, cascade_tolerance: float, train_docs=None) -> None:
    from ..training.calibration import calibrate_pipeline

    result = calibrate_pipeline(pipeline, dev_docs, dev_size=dev_size,
                                candidates=candidates, cascade=cascade,
                                cascade_tolerance=cascade_tolerance / 100,
                                train_docs=train_docs)
    gate = result.get("learned_gate")
    if gate is not None:
        typer.echo(f"learned composite gate: threshold {gate['threshold']:.3f} (fitted on "
                   f"{gate['mentions']} coordinated training mentions; cross-validated, "
                   f"{gate['cv_right']} of {gate['cv_passed']} passing mentions right)")
    for row in result["table"]:
        typer.echo(f"prior_weight {row['prior_weight']:>8g}  dev R@1 {100 * row['recall@1']:.1f}")
    typer.echo(f"chosen: prior_weight {result['prior_weight']:g} (dev R@1 "
               f"{100 * result['recall@1']:.1f} on {result['dev_mentions']} mentions) -> {pipeline}")
    if cascade:
        cas = result["cascade"]
        for row in cas["table"]:
            typer.echo(f"cascade_margin {_margin_text(row['margin']):>10}  dev R@1 "
                       f"{100 * row['recall@1']:.1f}  skipped {100 * row['skipped']:.1f}%")
        typer.echo(f"chosen: cascade {'on' if cas['on'] else 'off'}, cascade_margin "
                   f"{_margin_text(cas['margin'])} (dev R@1 {100 * cas['recall@1']:.1f}, "
                   f"{100 * cas['skipped']:.1f}% of mentions skip the LM)")


def _margin_text(margin: Optional[float]) -> str:
    return "exact-only" if margin is None else f"{margin:g}"


@app.command("train-ner", context_settings={"allow_extra_args": True,
                                            "ignore_unknown_options": True})
def train_ner_command(
    ctx: typer.Context,
    corpus_dir: Path = typer.Argument(..., help="What `ner-corpus` wrote: {split}.spacy, config.cfg and, for a corpus with annotation layers, layers/ and layers.json."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for model-best and model-last (e.g. training/DATASET/ner)."),
    config: Optional[Path] = typer.Option(None, "--config", help="NER config (default: CORPUS_DIR/config.cfg)."),
    use_gpu: int = typer.Option(-1, "--gpu-id", help="GPU id, -1 for the CPU."),
) -> None:
    """Train the entity recognizer with `spacy train` (extra `--section.key value` arguments are
    config overrides, as `spacy train` takes them): once, or once per annotation layer, joined."""
    import srsly
    from spacy.cli._util import parse_config_overrides

    from ..training.ner_layers import train_ner

    # the layers' runs resume inside OUTPUT: it may exist, but never be or hold an input
    check_outputs({"--output": output}, {"the NER corpus": corpus_dir, "--config": config},
                  whole=False)
    info = train_ner(corpus_dir, output, config=config, use_gpu=use_gpu,
                     overrides=parse_config_overrides(ctx.args))
    typer.echo(srsly.json_dumps(info, indent=2))


@app.command()
def assemble(
    output: Path = typer.Argument(..., help="Pipeline folder to write (e.g. training/DATASET/pipeline)."),
    linker: Path = typer.Option(..., "--linker", help="A linker pipeline (e.g. training/DATASET/model-best)."),
    ner: Path = typer.Option(..., "--ner", help="The NER pipeline `spacy train` wrote (e.g. training/DATASET/ner/model-best)."),
    segmenter: str = typer.Option("sentencizer", "--segmenter", help="Sentence segmenter factory placed first (none: no segmenter)."),
    force: bool = typer.Option(False, "--force", help="Replace OUTPUT when it exists (once the new pipeline is complete)."),
    proposer_corpus: Optional[Path] = typer.Option(None, "--proposer-corpus", help="A training corpus: add a syncabel_dictionary_proposer (its mentions and the KB names, kept by their precision on its texts) after the NER."),
    proposer: bool = typer.Option(True, "--proposer/--no-proposer", help="--no-proposer: no proposer even with --proposer-corpus."),
    nil_threshold: str = typer.Option("none", "--nil-threshold", help="The linker answers NIL under this top calibrated probability (the raw top score for a linker without a calibrator): a number, auto (the best-F1 one on the gold mentions of --threshold-corpus) or none."),
    threshold_corpus: Optional[Path] = typer.Option(None, "--threshold-corpus", help="auto: choose the NIL threshold on this corpus's gold mentions (best F1 of the answers; not the corpus scored end to end)."),
    spans: Optional[Path] = typer.Option(None, "--spans", help="A span categorizer pipeline (train-ner on the corpus of ner-corpus --spans-key sc --config configs/spancat.cfg): its nested spans go into the span group the linker links (none: doc.ents only)."),
    spans_keep: str = typer.Option("nested", "--spans-keep", help="With --spans: nested (the NER's entities plus the spans that nest in or contain one), all (plus every span) or source (the span categorizer's spans only)."),
) -> None:
    """Assemble sentence segmenter + NER + syncabel_linker into one pipeline for raw notes."""
    import srsly

    from ..training.assemble import assemble_pipeline

    info = assemble_pipeline(linker, ner, output, segmenter=segmenter, force=force,
                             proposer_corpus=proposer_corpus if proposer else None,
                             nil_threshold=nil_threshold, threshold_corpus=threshold_corpus,
                             spans=None if spans is None or str(spans).lower() == "none"
                             else spans, spans_keep=spans_keep)
    typer.echo(srsly.json_dumps(info, indent=2))


@app.command()
def package(
    pipeline: Path = typer.Argument(..., help="A pipeline folder (e.g. training/DATASET/pipeline)."),
    output: Path = typer.Argument(..., help="Folder the package folder <lang>_<name>-<version> is written in (e.g. packages/DATASET)."),
    name: Optional[str] = typer.Option(None, "--name", help="Package name, prefixed with the language (default: meta.json's; syncabel_spaccc gives es_syncabel_spaccc)."),
    version: Optional[str] = typer.Option(None, "--version", help="Package version (default: meta.json's)."),
    wheel: bool = typer.Option(True, "--wheel/--no-wheel", help="Build the wheel into the package folder's dist/ (offline)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing package folder (once the new one is complete)."),
) -> None:
    """An installable Python package of a pipeline (spaCy's `spacy package`) and its wheel."""
    import srsly

    from ..training.packaging import package_pipeline

    info = package_pipeline(pipeline, output, name=name, version=version, wheel=wheel,
                            force=force)
    typer.echo(srsly.json_dumps(info, indent=2))

