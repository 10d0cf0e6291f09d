"""Concept knowledge bases and their loaders."""
from .concept_kb import ConceptKB, fast_clean_name
from .syncabel import kb_from_syncabel, read_text_to_code
from .loaders import (
    FORMATS,
    kb_from_cie_o3,
    kb_from_file,
    kb_from_jsonl,
    kb_from_medic,
    kb_from_obo,
    kb_from_snomed_rf2,
    kb_from_tsv,
    kb_from_umls,
    load_semantic_groups,
    read_cie_o3,
    read_file,
    read_jsonl,
    read_medic,
    read_obo,
    read_snomed_rf2,
    read_tsv,
    read_umls,
)

__all__ = [
    "ConceptKB", "fast_clean_name", "FORMATS", "load_semantic_groups",
    "read_tsv", "read_jsonl", "read_medic", "read_cie_o3", "read_obo", "read_umls",
    "read_snomed_rf2", "read_file",
    "kb_from_tsv", "kb_from_jsonl", "kb_from_medic", "kb_from_cie_o3", "kb_from_obo",
    "kb_from_umls", "kb_from_snomed_rf2", "kb_from_file", "kb_from_syncabel", "read_text_to_code",
]
