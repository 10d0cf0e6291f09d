"""The benchmark datasets the spaCy project knows, by name: where their files are (relative to
the assets folder, mirroring ``../shared/data``), their KB, language and splits."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .types import CorpusDoc


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    lang: str
    kb: str
    train: str
    test: str
    dev: Optional[str] = None  # None: hold out ``dev_fraction`` of the training documents
    dev_fraction: float = 0.05
    kb_format: str = "auto"
    label_map: Dict[str, Optional[str]] = field(default_factory=dict)
    # splits whose documents the project's NER also trains on (`ner-corpus --extra-train auto`)
    ner_extra_train: Tuple[str, ...] = ()
    # settings of the project's NER config for this dataset, dotted keys (`ner-corpus` writes
    # them into the config it copies beside the NER corpus)
    ner_settings: Dict[str, object] = field(default_factory=dict)


DATASETS: Dict[str, DatasetSpec] = {
    "spaccc": DatasetSpec("spaccc", "es", "spaccc/kb_snomed_es_lite.tsv", "spaccc/train.tsv",
                          "spaccc/test_half.tsv"),
    "ncbi": DatasetSpec("ncbi", "en", "medic/medic_06Jul2012.txt",
                        "ncbi-disease/NCBItrainset_corpus.txt",
                        "ncbi-disease/NCBItestset_corpus.txt",
                        dev="ncbi-disease/NCBIdevelopset_corpus.txt",
                        label_map={"SpecificDisease": "Disease", "DiseaseClass": "Disease",
                                   "Modifier": "Disease", "CompositeMention": "Disease"}),
    "cantemist": DatasetSpec("cantemist", "es", "cantemist/cie_o3.jsonl", "cantemist/train",
                             "cantemist/dev1", dev="cantemist/dev2",
                             # the NER also trains on dev1 (released for training) and
                             # averages its parameters: dev2 NER F1 0.800 -> 0.82-0.83 in the
                             # same 3000 steps (results/ner_variants_cantemist-dev2.json);
                             # larger hash tables, at no cost per step: end-to-end dev2 NER
                             # F1 0.823 -> 0.829, linking F1 0.759 -> 0.763 (means of two
                             # seeds, results/ner_arch_cantemist-dev2.json)
                             ner_extra_train=("test",),
                             ner_settings={"training.optimizer.use_averages": True,
                                           "components.tok2vec.model.embed.rows":
                                               [20000, 5000, 5000, 5000]}),
    "quaero": DatasetSpec("quaero", "fr", "quaero/kb_umls_fr_lite.tsv", "quaero/train",
                          "quaero/dev",
                          label_map={"DISO": "Disorders", "PROC": "Procedures",
                                     "ANAT": "Anatomy", "CHEM": "Chemicals & Drugs",
                                     "DEVI": "Devices", "GEOG": "Geographic Areas",
                                     "LIVB": "Living Beings", "OBJC": "Objects",
                                     "PHEN": "Phenomena", "PHYS": "Physiology"}),
}


def get_dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset '{name}'. Choose one of {sorted(DATASETS)}.")
    return DATASETS[name]


def split_dev(docs: Sequence[CorpusDoc], fraction: float, seed: int = 0,
              ) -> Tuple[List[CorpusDoc], List[CorpusDoc]]:
    """Hold out a deterministic ``fraction`` of the documents as dev: (train, dev)."""
    ids = sorted(d.id for d in docs)
    rng = random.Random(seed)
    rng.shuffle(ids)
    n_dev = max(1, int(round(len(ids) * fraction)))
    dev_ids = set(ids[:n_dev])
    return ([d for d in docs if d.id not in dev_ids], [d for d in docs if d.id in dev_ids])

