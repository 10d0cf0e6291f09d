"""A small assembled pipeline for raw notes, shared by the packaging tests."""
import warnings
from pathlib import Path

import pytest
import spacy

from ..conftest import KB_ROWS, add_linker


def assembled_pipeline(kb_tsv, folder: Path) -> Path:
    """``folder/pipeline`` as `assemble` writes it: syncabel_sentencizer, an entity_ruler
    (the KB names as patterns of their groups) as the NER, a tiny random linker."""
    from spacy_syncabel.training.assemble import assemble_pipeline
    from spacy_syncabel.training.pipeline_io import save_pipeline

    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv, num_beams=3, n_best=3, max_new_tokens=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    linker = save_pipeline(nlp, folder / "linker")
    ner = spacy.blank("es")
    ner.add_pipe("entity_ruler").add_patterns(
        [{"label": group, "pattern": name} for _, name, group in KB_ROWS])
    folder.mkdir(parents=True, exist_ok=True)
    ner.to_disk(folder / "ner")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assemble_pipeline(linker, folder / "ner", folder / "pipeline",
                          segmenter="syncabel_sentencizer")
    return folder / "pipeline"


@pytest.fixture(scope="package")
def tiny_pipeline(kb_tsv, tmp_path_factory) -> Path:
    return assembled_pipeline(kb_tsv, tmp_path_factory.mktemp("assembled"))
