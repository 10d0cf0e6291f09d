"""displaCy rendering of linked entities (label, code and KB name, linked to a KB browser)
and a self-contained HTML report of a ``link`` run."""
from __future__ import annotations

import hashlib
import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import Errors
from .types import COMPOSITE_SEP, NIL, NO_CODE

KB_URL_PRESETS: Dict[str, str] = {
    "snomed": "https://browser.ihtsdotools.org/?perspective=full&conceptId1={}",
    "mesh": "https://meshb.nlm.nih.gov/record/ui?ui={}",
    "omim": "https://omim.org/entry/{}",
    "umls": "https://uts.nlm.nih.gov/uts/umls/concept/{}",
    "hpo": "https://hpo.jax.org/browse/term/{}",
}

PALETTE = ["#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe", "#fed7aa", "#a5f3fc",
           "#f5d0fe", "#d9f99d", "#e5e7eb"]


def _template(spec: str) -> str:
    template = KB_URL_PRESETS.get(spec.lower(), spec)
    presets = ", ".join(sorted(KB_URL_PRESETS))
    if not template.startswith(("https://", "http://")):
        raise ValueError(Errors.E163.format(template=spec, problem="not an http(s) URL",
                                            presets=presets))
    rest = template.replace("{}", "", 1)
    if "{}" not in template or "{" in rest or "}" in rest:
        raise ValueError(Errors.E163.format(template=spec, problem="it needs exactly one '{}' "
                                            "and no other braces", presets=presets))
    return template


@dataclass
class KBLinks:
    """URL templates for codes: ``default`` for every code, ``by_prefix`` for codes written
    ``PREFIX:ID`` (the ID goes into the template), e.g. MEDIC's ``MESH:`` and ``OMIM:``."""

    default: Optional[str] = None
    by_prefix: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, specs: Sequence[str]) -> "KBLinks":
        """From ``--kb-url`` values: a preset (snomed, mesh, omim, umls, hpo), a URL with
        ``{}``, or ``PREFIX=preset-or-URL``."""
        links = cls()
        for spec in specs:
            prefix, sep, value = spec.partition("=")
            if sep and not prefix.lower().startswith("http") and "/" not in prefix:
                links.by_prefix[prefix.upper()] = _template(value)
            else:
                links.default = _template(spec)
        return links

    def url(self, code: Optional[str]) -> Optional[str]:
        if not code or code in (NIL, NO_CODE):
            return None
        first = code.split(COMPOSITE_SEP)[0]
        prefix, sep, ident = first.partition(":")
        if sep and prefix.upper() in self.by_prefix:
            return self.by_prefix[prefix.upper()].format(ident)
        return self.default.format(first) if self.default else None

    def displacy_options(self) -> Dict[str, Any]:
        """Options for ``displacy.render(doc, style="ent", options=...)`` on a linked doc
        (codes only, as spaCy renders ``ent.kb_id_``)."""
        return {"kb_url_template": self.default} if self.default else {}


def label_colors(labels: Iterable[str]) -> Dict[str, str]:
    """A stable colour per label (displaCy matches labels upper-cased)."""
    return {lab.upper(): PALETTE[int(hashlib.md5(lab.encode("utf8")).hexdigest(), 16)
                                 % len(PALETTE)] for lab in labels}


def record_to_displacy(record: Mapping[str, Any], text: str, links: Optional[KBLinks] = None
                       ) -> Dict[str, Any]:
    """displaCy's manual ``ent`` input for a ``link`` record: each entity shows its label, its
    code and KB name (``kb_id``), linked to ``links.url(code)`` (``kb_url``)."""
    links = links or KBLinks()
    ents = []
    for ent in sorted(record["entities"], key=lambda e: (e["start"], e["end"])):
        code = ent.get("code") or NIL
        shown = code if not ent.get("name") or code in (NIL, NO_CODE) else (
            f"{code} · {ent['name'].replace('<SEP>', ' + ')}")
        ents.append({"start": ent["start"], "end": ent["end"],
                     "label": html.escape(ent["label"]), "kb_id": html.escape(shown),
                     "kb_url": html.escape(links.url(code) or "#")})
    return {"text": text, "ents": ents, "title": html.escape(str(record["id"]))}


def render_record(record: Mapping[str, Any], text: str, links: Optional[KBLinks] = None) -> str:
    """HTML (a ``<div>``) of one linked note."""
    from spacy import displacy

    data = record_to_displacy(record, text, links)
    colors = label_colors(e["label"] for e in record["entities"])
    return displacy.render(data, style="ent", manual=True, page=False, jupyter=False,
                           options={"colors": colors})


@dataclass
class Summary:
    """Counts over ``link`` records."""

    notes: int = 0
    entities: int = 0
    nil: int = 0
    per_label: Dict[str, Counter] = field(default_factory=dict)
    codes: Counter = field(default_factory=Counter)
    names: Dict[str, str] = field(default_factory=dict)
    #: (top candidate's calibrated probability, linked) of every entity that has one
    probabilities: List[Tuple[float, bool]] = field(default_factory=list)

    def add(self, record: Mapping[str, Any]) -> None:
        self.notes += 1
        for ent in record["entities"]:
            self.entities += 1
            nbest = ent.get("n_best") or []
            if nbest and isinstance(nbest[0].get("probability"), (int, float)):
                self.probabilities.append((float(nbest[0]["probability"]),
                                           ent.get("code") not in (None, "", NIL, NO_CODE)))
            counts = self.per_label.setdefault(ent["label"], Counter())
            counts["entities"] += 1
            code = ent.get("code")
            if not code or code in (NIL, NO_CODE):
                self.nil += 1
                counts["nil"] += 1
            else:
                self.codes[code] += 1
                if ent.get("name") and code not in self.names:
                    self.names[code] = ent["name"]

    @property
    def nil_share(self) -> float:
        return self.nil / self.entities if self.entities else 0.0

    def expected_curve(self) -> List[Dict[str, float]]:
        """Expected precision (the mean calibrated probability of the entities kept) against
        coverage, keeping entities from the most probable down; [] without probabilities."""
        probs = sorted((p for p, _ in self.probabilities), reverse=True)
        out, total = [], 0.0
        for i, p in enumerate(probs, start=1):
            total += p
            if i == len(probs) or probs[i] != p:
                out.append({"coverage": i / len(probs), "precision": total / i, "threshold": p})
        return out

    def linked_share(self) -> Optional[float]:
        """Share of the entities with a probability that kept their code (the NIL threshold's
        operating point)."""
        if not self.probabilities:
            return None
        return sum(linked for _, linked in self.probabilities) / len(self.probabilities)

    def top_codes(self, n: int = 20) -> List[Tuple[str, str, int]]:
        return [(code, self.names.get(code, ""), count)
                for code, count in self.codes.most_common(n)]


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2937;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px
solid #e5e7eb;padding-bottom:.3rem}.meta{color:#6b7280}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #e5e7eb;padding:.3rem .7rem;
text-align:left}th{background:#f3f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#f9fafb;border:1px solid #e5e7eb;
border-radius:.5rem;padding:.7rem 1.1rem}.card b{display:block;font-size:1.5rem}
.note{border:1px solid #e5e7eb;border-radius:.5rem;padding:.2rem 1rem;margin:1rem 0}
.note h2{font-size:1rem;border:0;margin:.6rem 0 0}
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{v}</td>' if isinstance(v, (int, float)) else
        f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def curve_svg(points: Sequence[Mapping[str, float]], operating: Optional[float] = None,
              width: int = 420, height: int = 260, title: str = "") -> str:
    """An inline SVG of a precision/coverage curve (``points``: ``{"coverage",
    "precision"}`` in [0, 1]); ``operating``: a coverage marked by a vertical line."""
    left, right, top, bottom = 48, 12, 12, 36
    w, h = width - left - right, height - top - bottom

    def xy(cov: float, prec: float) -> Tuple[float, float]:
        return left + w * min(1.0, max(0.0, cov)), top + h * (1 - min(1.0, max(0.0, prec)))

    ordered = sorted(points, key=lambda p: p["coverage"])
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(
        xy(p["coverage"], p["precision"]) for p in ordered))
    grid = []
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, _ = xy(v, 0)
        _, y = xy(0, v)
        grid.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" '
                    f'stroke="#e5e7eb"/><text x="{left - 6}" y="{y + 4:.1f}" '
                    f'text-anchor="end" font-size="11">{100 * v:.0f}%</text>'
                    f'<text x="{x:.1f}" y="{top + h + 16}" text-anchor="middle" '
                    f'font-size="11">{100 * v:.0f}%</text>')
    mark = ""
    if operating is not None:
        x, _ = xy(operating, 0)
        mark = (f'<line class="operating" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" '
                f'y2="{top + h}" stroke="#dc2626" stroke-dasharray="4 3"/>')
    label = html.escape(title or "precision / coverage")
    return (f'<svg class="pc-curve" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{label}"><title>{label}</title>{"".join(grid)}'
            f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" '
            f'stroke="#9ca3af"/><path d="{path}" fill="none" stroke="#2563eb" '
            f'stroke-width="2"/>{mark}<text x="{left + w / 2:.1f}" y="{height - 4}" '
            f'text-anchor="middle" font-size="12">coverage</text><text x="12" '
            f'y="{top + h / 2:.1f}" font-size="12" text-anchor="middle" '
            f'transform="rotate(-90 12 {top + h / 2:.1f})">precision</text></svg>')


def report_html(summary: Summary, rendered: Sequence[Tuple[Mapping[str, Any], str]],
                links: Optional[KBLinks] = None, title: str = "Linked notes",
                n_errors: int = 0, top: int = 20) -> str:
    """A self-contained page (inline CSS, no script, no external asset): summary cards,
    entities per label, the most linked codes with names, and the rendered notes."""
    links = links or KBLinks()
    cards = [("notes", summary.notes), ("entities", summary.entities),
             ("NIL share", f"{100 * summary.nil_share:.1f}%"), ("distinct codes", len(summary.codes)),
             ("failed notes", n_errors)]
    cards_html = "".join(f'<div class="card"><b>{html.escape(str(v))}</b>{html.escape(k)}</div>'
                         for k, v in cards)
    labels = _table(["label", "entities", "linked", "NIL", "NIL share"], [
        (lab, c["entities"], c["entities"] - c["nil"], c["nil"],
         f"{100 * c['nil'] / c['entities']:.1f}%" if c["entities"] else "-")
        for lab, c in sorted(summary.per_label.items(), key=lambda kv: -kv[1]["entities"])])
    code_rows = []
    for code, name, count in summary.top_codes(top):
        url = links.url(code)
        cell = (f'<a href="{html.escape(url)}">{html.escape(code)}</a>' if url
                else html.escape(code))
        code_rows.append(f"<tr><td>{cell}</td><td>{html.escape(name)}</td>"
                         f'<td class="n">{count}</td></tr>')
    codes = ("<table><thead><tr><th>code</th><th>KB name</th><th>mentions</th></tr></thead>"
             f"<tbody>{''.join(code_rows)}</tbody></table>")
    notes = "".join(f'<section class="note">{markup}</section>' for _, markup in rendered)
    curve = summary.expected_curve()
    curve_html = ""
    if curve:
        curve_html = ("<h2>Precision / coverage</h2><p class=\"meta\">Expected precision (the "
                      "mean calibrated probability of the entities kept) when only the most "
                      "probable entities keep their code; the dashed line: the share linked "
                      "at the pipeline's NIL threshold.</p>"
                      + curve_svg(curve, summary.linked_share(), title="expected precision / "
                                  "coverage"))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class=\"meta\">Entities found and linked by the "
            f"pipeline; each entity shows its label, code and KB name.</p>"
            f'<div class="cards">{cards_html}</div>'
            f"<h2>Entities per label</h2>{labels}{curve_html}"
            f"<h2>Most linked codes</h2>{codes}"
            f"<h2>Notes ({len(rendered)} of {summary.notes} shown)</h2>{notes}</body></html>")


def calibration_html(report: Mapping[str, Any], title: str = "Linking calibration") -> str:
    """A self-contained page of an ``evaluate`` report's ``calibration`` block: the measured
    precision/coverage curve (the NIL threshold's point marked), ECE per path and the
    precision/coverage table."""
    op = report.get("operating_point") or {}
    paths = _table(["path", "mentions", "ECE", "accuracy", "mean probability"], [
        (p, s["n_mentions"], f"{s['ece']:.3f}", f"{100 * s['accuracy']:.1f}%",
         f"{100 * s['mean_probability']:.1f}%")
        for p, s in sorted((report.get("per_path") or {}).items())])
    rows = [(f"{100 * r['coverage_target']:.0f}%", f"{r['threshold']:.3f}",
             f"{100 * r['coverage']:.1f}%", f"{100 * r['precision']:.1f}%")
            for r in report.get("precision_coverage") or []]
    if op:
        rows.append(("NIL threshold", f"{op['threshold']:.3f}", f"{100 * op['coverage']:.1f}%",
                     f"{100 * op['precision']:.1f}%"))
    table = _table(["coverage at least", "threshold", "coverage", "precision"], rows)
    svg = curve_svg(report.get("curve") or [], op.get("coverage"),
                    title="measured precision / coverage")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class=\"meta\">{report.get('n_mentions', 0)} gold "
            f"mentions; ECE {report.get('ece', 0.0):.3f} of the top candidate's "
            f"{html.escape(str(report.get('probability')))} ({report.get('bins', 10)} bins)."
            f"</p><h2>Precision / coverage</h2>{svg}{table}<h2>Calibration per path</h2>"
            f"{paths}</body></html>")


def write_report(path: Union[str, Path], records: Iterable[Mapping[str, Any]],
                 texts: Mapping[str, str], links: Optional[KBLinks] = None,
                 title: str = "Linked notes", n_errors: int = 0, top: int = 20) -> Summary:
    """Summarize every record and render those whose id is in ``texts`` (in ``texts``'
    order); write the page to ``path`` (UTF-8)."""
    summary = Summary()
    kept: Dict[str, Mapping[str, Any]] = {}
    for record in records:
        summary.add(record)
        if record["id"] in texts and record["id"] not in kept:
            kept[record["id"]] = record
    rendered = [(kept[i], render_record(kept[i], texts[i], links)) for i in texts if i in kept]
    page = report_html(summary, rendered, links, title=title, n_errors=n_errors, top=top)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return summary
