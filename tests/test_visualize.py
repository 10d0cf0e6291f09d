"""displaCy rendering with codes, KB names and links; the HTML report, in a real browser."""
import re
import shutil
import subprocess
import tempfile

import pytest
import spacy
from spacy import displacy

from spacy_syncabel.visualize import (KB_URL_PRESETS, KBLinks, record_to_displacy,
                                      render_record, write_report)

TEXT = "Varón con fiebre y <b>HTA</b> & dolor abdominal."
RECORD = {"id": "note<1>", "entities": [
    {"start": 10, "end": 16, "label": "SINTOMA", "text": "fiebre", "code": "386661006",
     "name": "fiebre", "score": 0.9, "n_best": []},
    {"start": 22, "end": 25, "label": "ENFERMEDAD", "text": "HTA", "code": "38341003",
     "name": "hipertensión <arterial>", "score": 0.8, "n_best": []},
    {"start": 33, "end": 48, "label": "SINTOMA", "text": "dolor abdominal", "code": "NIL",
     "name": None, "score": 0.1, "n_best": []},
]}


def test_kb_links_presets_prefixes_and_bad_templates():
    links = KBLinks.parse(["snomed"])
    assert links.url("386661006") == KB_URL_PRESETS["snomed"].format("386661006")
    assert links.url("NIL") is None and links.url("") is None
    assert links.url("1+2").endswith("conceptId1=1")  # composite: the first code
    medic = KBLinks.parse(["MESH=mesh", "OMIM=https://omim.org/entry/{}"])
    assert medic.url("MESH:D003924") == "https://meshb.nlm.nih.gov/record/ui?ui=D003924"
    assert medic.url("OMIM:222100") == "https://omim.org/entry/222100"
    assert medic.url("D003924") is None  # no default template
    for bad in ["javascript:alert({})", "https://x.org/no-placeholder", "https://x/{}/{0}"]:
        with pytest.raises(ValueError, match="E163"):
            KBLinks.parse([bad])


def test_render_shows_code_name_and_link_and_escapes_html():
    links = KBLinks.parse(["snomed"])
    data = record_to_displacy(RECORD, TEXT, links)
    assert [e["kb_id"] for e in data["ents"]] == [
        "386661006 · fiebre", "38341003 · hipertensión &lt;arterial&gt;", "NIL"]
    markup = render_record(RECORD, TEXT, links)
    assert 'href="https://browser.ihtsdotools.org/?perspective=full&amp;conceptId1=38341003"' in markup
    assert "<b>" not in markup and "&lt;b&gt;HTA" not in markup  # the entity is marked up
    assert "&lt;arterial&gt;" in markup and "note&lt;1&gt;" in markup
    # spaCy's own displaCy on a doc with kb_id_: the same template through its options
    nlp = spacy.blank("es")
    doc = nlp.make_doc(TEXT)
    doc.ents = [doc.char_span(10, 16, label="SINTOMA", kb_id="386661006")]
    html = displacy.render(doc, style="ent", options=links.displacy_options())
    assert "conceptId1=386661006" in html


def _report(tmp_path, links):
    records = [RECORD, {"id": "n2", "entities": [dict(RECORD["entities"][0])]},
               {"id": "n3", "entities": []}]
    texts = {"note<1>": TEXT, "n2": "Varón con fiebre."}
    path = tmp_path / "report.html"
    summary = write_report(path, records, texts, links, n_errors=2)
    return path, summary


def test_summary_and_self_contained_page(tmp_path):
    path, summary = _report(tmp_path, KBLinks.parse(["snomed"]))
    assert (summary.notes, summary.entities, summary.nil) == (3, 4, 1)
    assert summary.nil_share == 0.25
    assert summary.top_codes(1) == [("386661006", "fiebre", 2)]
    assert summary.per_label["SINTOMA"] == {"entities": 3, "nil": 1}
    page = path.read_text(encoding="utf-8")
    assert page.count('<section class="note">') == 2 and "25.0%" in page
    # self-contained: no script, stylesheet, image, font or frame from anywhere
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(|src=", page, re.I)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: `apt-get install -y chromium` "
                    "(scripts/setup.sh does it where apt is available)")
def test_report_renders_in_headless_chromium(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    path, _ = _report(tmp_path, KBLinks.parse(["snomed"]))
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                        f"--screenshot={shot}", "--window-size=1280,1600", path.as_uri()],
                       check=True, timeout=120, capture_output=True)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 1600)
    colors = image.getcolors(maxcolors=1 << 20)
    assert len(colors) > 50  # text, tables and the entity colours, not a blank page
    # the entity highlight colours of displaCy are on the page
    from spacy_syncabel.visualize import label_colors

    rgb = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))
           for c in label_colors(["SINTOMA", "ENFERMEDAD"]).values()}
    assert rgb & {c for _, c in colors}
