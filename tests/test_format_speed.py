"""Import speed of each reader on real data converted at run time (Few-NERD → CoNLL BIO, FewRel → brat, Label
Studio JSON, doccano, TACRED), into a temporary folder; never committed. The times are printed, not asserted;
what is asserted is that the conversion keeps every annotation. Skips without ../shared/data."""

from __future__ import annotations

import time

import pytest

from conpet.data.documents import mention_annotations
from conpet.data.formats import read_sentences, sentences_from_examples, write_sentences
from conpet.store import Project
from conpet.store.importer import import_file

_CONVERSIONS = [  # (source, format, file name)
    ("fewnerd", "conll", "inter_dev.conll"),
    ("fewrel", "brat", "val_wiki_brat"),
    ("fewrel", "labelstudio", "val_wiki_labelstudio.json"),
    ("fewrel", "doccano", "val_wiki_doccano.jsonl"),
    ("fewrel", "tacred", "val_wiki_tacred.json"),
]


@pytest.fixture(scope="module")
def real_sentences(shared_data):
    from conpet.data.fewnerd import read_fewnerd
    from conpet.data.fewrel import read_fewrel

    return {
        "fewnerd": sentences_from_examples(read_fewnerd(shared_data / "fewnerd" / "inter_dev.txt")),
        "fewrel": sentences_from_examples(read_fewrel(shared_data / "fewrel" / "val_wiki.json",
                                                      shared_data / "fewrel" / "pid2name.json")),
    }


@pytest.mark.shared_data
@pytest.mark.parametrize("source, fmt, name", _CONVERSIONS)
def test_reader_and_import_speed_on_converted_real_data(real_sentences, tmp_path, source, fmt, name):
    sentences = real_sentences[source]
    path = tmp_path / name
    t0 = time.monotonic()
    write_sentences(path, sentences, fmt, **({"scheme": "BIO"} if fmt == "conll" else {}))
    t_write = time.monotonic() - t0
    t0, c0 = time.monotonic(), time.process_time()
    detected, back = read_sentences(path)
    t_read, c_read = time.monotonic() - t0, time.process_time() - c0
    assert detected == fmt
    want = mention_annotations(sentences)
    if fmt == "brat":
        want = {a[:-1] + (a[-1].replace(" ", "_"),) for a in want}
    assert mention_annotations(back) == want
    with Project.create(tmp_path / "p") as project:
        report = import_file(project, path)
    n_ann = sum(1 for s in back for e in s.entities if e.type) + sum(len(s.relations) for s in back)
    print(f"\n{source} -> {fmt}: {len(back)} sentences, {n_ann} annotations; write {t_write:.2f} s, "
          f"read {t_read:.2f} s ({c_read:.2f} s CPU, {n_ann / c_read:,.0f} annotations per CPU s), import into a project "
          f"{report.seconds:.2f} s ({report.added_annotations} added)")
