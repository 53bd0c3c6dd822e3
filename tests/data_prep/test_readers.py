"""Every reader yields the right documents and names file + line on bad input."""

from __future__ import annotations

import csv
import json

import pytest

from data_prep.errors import ErrorPolicy
from data_prep.readers import detect_format, read_input
from medmegatron.errors import UserFacingError

JATS = """<?xml version="1.0"?>
<article xmlns:xlink="http://www.w3.org/1999/xlink">
 <front><article-meta>
  <article-id pub-id-type="pmid">123</article-id>
  <title-group><article-title>Metformin in type 2 diabetes</article-title></title-group>
  <abstract><sec><title>Background</title><p>Metformin lowers glucose <xref ref-type="bibr" rid="b1">[1]</xref>.</p></sec></abstract>
 </article-meta></front>
 <body>
  <sec><title>Methods</title><p>We enrolled 40 adults (<xref ref-type="fig" rid="f1">Figure 1</xref>) and measured HbA1c.</p>
   <fig id="f1"><label>Figure 1</label><caption><p>FIGURE CAPTION NOISE</p></caption></fig>
   <table-wrap><table><tr><td>TABLE CELL NOISE</td></tr></table></table-wrap>
  </sec>
 </body>
 <back><ref-list><ref id="b1"><mixed-citation>REFERENCE NOISE et al.</mixed-citation></ref></ref-list></back>
</article>"""

PUBMED = """<?xml version="1.0"?>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>999</PMID><Article>
<ArticleTitle>Aspirin and stroke</ArticleTitle>
<Abstract><AbstractText Label="RESULTS">Aspirin reduced stroke.</AbstractText></Abstract>
</Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"""


def test_jats_keeps_text_and_drops_noise(tmp_path):
    (tmp_path / "a.nxml").write_text(JATS)
    [doc] = list(read_input(tmp_path / "a.nxml"))
    assert doc.id == "pmid:123"
    for wanted in ("Metformin in type 2 diabetes", "Background", "Metformin lowers glucose.",
                   "Methods", "We enrolled 40 adults and measured HbA1c."):
        assert wanted in doc.text
    for noise in ("NOISE", "[1]", "Figure 1"):
        assert noise not in doc.text
    (tmp_path / "p.xml").write_text(PUBMED)
    [doc] = list(read_input(tmp_path / "p.xml"))
    assert doc.id == "pmid:999" and doc.text == "Aspirin and stroke\nResults: Aspirin reduced stroke."
    (tmp_path / "bad.xml").write_text("<article><body><p>unclosed</body></article>")
    with pytest.raises(UserFacingError, match=r"bad.xml:1: not well-formed XML"):
        list(read_input(tmp_path / "bad.xml"))


def test_clinical_csv_multiline_and_column_errors(tmp_path):
    path = tmp_path / "NOTEEVENTS.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ROW_ID", "SUBJECT_ID", "CATEGORY", "TEXT"])
        w.writerow([1, 10, "Discharge", "Line one.\nLine two, with comma."])
        w.writerow([2, 11, "Nursing", "Short note."])
    docs = list(read_input(path))
    assert [d.id for d in docs] == ["1", "2"] and docs[0].text == "Line one.\nLine two, with comma."
    assert docs[0].source == "clinical"
    with pytest.raises(UserFacingError, match=r"no 'note_text' text column \(columns present: "
                                              r"\['ROW_ID', 'SUBJECT_ID', 'CATEGORY', 'TEXT'\]"):
        list(read_input(path, text_key="note_text"))
    lower = tmp_path / "mimic4.csv"
    lower.write_text("note_id,text\nn1,hello\n")
    assert [(d.id, d.text) for d in read_input(lower)] == [("n1", "hello")]


def test_parquet_and_hf_disk(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict

    table = pa.table({"id": ["a", "b", "c"], "content": ["one", None, "three"]})
    pq.write_table(table, tmp_path / "x.parquet")
    with pytest.raises(UserFacingError, match="columns present"):
        list(read_input(tmp_path / "x.parquet"))
    with pytest.raises(UserFacingError, match=r"row 2"):
        list(read_input(tmp_path / "x.parquet", text_key="content"))
    policy = ErrorPolicy("skip")
    docs = list(read_input(tmp_path / "x.parquet", text_key="content", policy=policy))
    assert [(d.id, d.text) for d in docs] == [("a", "one"), ("c", "three")]
    assert policy.skipped == {"text_not_a_string": 1}
    DatasetDict({"train": Dataset.from_dict({"text": ["t1", "t2"]}),
                 "test": Dataset.from_dict({"text": ["t3"]})}).save_to_disk(tmp_path / "hf")
    assert detect_format(tmp_path / "hf") == "hf_disk"
    assert sorted(d.text for d in read_input(tmp_path / "hf")) == ["t1", "t2", "t3"]


def test_text_folder_and_json(tmp_path):
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.txt").write_text("beta")
    (folder / "bad.txt").write_bytes(b"ok\n\xff\xfe")
    with pytest.raises(UserFacingError, match=r"bad.txt:2: not valid UTF-8"):
        list(read_input(folder))
    policy = ErrorPolicy("skip")
    assert [d.text for d in read_input(folder, policy=policy)] == ["alpha", "beta"]
    assert policy.total_skipped == 1
    (tmp_path / "list.json").write_text(json.dumps([{"text": "x"}, {"text": "y", "id": 7}]))
    assert [(d.id, d.text) for d in read_input(tmp_path / "list.json")] == [("list:0", "x"), ("7", "y")]
    (tmp_path / "broken.json").write_text('[{"text": "x"},\n {"text": }]')
    with pytest.raises(UserFacingError, match=r"broken.json:2: not valid JSON"):
        list(read_input(tmp_path / "broken.json"))
    with pytest.raises(UserFacingError, match="--format"):
        detect_format(tmp_path / "x.unknown")


@pytest.mark.shared_data
def test_pubmedqa_reader(pubmedqa):
    path, test_ids = pubmedqa
    docs = list(read_input(path, exclude_ids=test_ids))
    assert len(docs) == 1000 - len(test_ids) and all(d.text for d in docs)
