"""The label → KB group map of the component's config."""
from __future__ import annotations

from typing import Dict, Optional

import spacy


@spacy.registry.misc("spacy_syncabel.LabelMap.v1")
def label_map(mapping: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, Optional[str]]:
    """A label → KB group map. A label mapped to null is linked against all groups."""
    return dict(mapping or {})
