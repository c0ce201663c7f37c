# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""Plain text into a project from the app: a sentence typed in the Label view, text pasted into a dialog
(split into sentences, duplicates counted), and a .txt import with the choice of how to split it, on
tricky input: a BOM, CRLF line ends, blank lines, and a 10 MB file."""

from __future__ import annotations

from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401
from test_app_labelling import TEXT, setup

from app.import_dialog import ImportDialog
from app.main_window import MainWindow
from app.paste_dialog import PasteTextDialog

TRICKY = ("\ufeffAda Lovelace was born in London.\r\n\r\n\r\n"
          "Alan Turing worked at Bletchley Park. He was born in 1912.\r\n"
          "   \r\n"
          f"{TEXT}\r\n"
          "Alan Turing worked at Bletchley Park.\r\n")


def test_a_sentence_typed_in_the_label_view_is_added_and_shown(qtbot, app_env, tmp_path):
    w, view, sid, _ = setup(qtbot, app_env, tmp_path)
    before = len(w.model.sentence_ids())
    qtbot.keyClicks(view.add_sentence_edit, "  Mo Reyes flew to Quito.  ")
    qtbot.keyClick(view.add_sentence_edit, "\r")
    new = w.model.project.sentences.by_text("Mo Reyes flew to Quito.")
    assert new is not None and len(w.model.sentence_ids()) == before + 1
    assert view.sentence_id == new.id and view.editor.toPlainText() == "Mo Reyes flew to Quito."
    assert "Added 1 sentence" in view.status.text() and view.add_sentence_edit.text() == ""
    qtbot.keyClicks(view.add_sentence_edit, TEXT)  # already there: not added twice, shown
    qtbot.keyClick(view.add_sentence_edit, "\r")
    assert view.sentence_id == sid and "already in the project" in view.status.text()
    qtbot.keyClicks(view.add_sentence_edit, "   ")
    qtbot.keyClick(view.add_sentence_edit, "\r")
    assert "no text to add" in view.status.text() and len(w.model.sentence_ids()) == before + 1


def test_pasted_text_is_split_into_sentences_and_duplicates_are_counted(qtbot, app_env, tmp_path, monkeypatch):
    w, view, sid, _ = setup(qtbot, app_env, tmp_path)
    before = len(w.model.sentence_ids())

    def paste(dialog):
        dialog.text.setPlainText(TRICKY)
        dialog.add_button.click()
        return dialog.result()

    monkeypatch.setattr(PasteTextDialog, "exec", paste)
    view.paste_button.click()
    texts = [s.text for s in w.model.sentences(w.model.sentence_ids()).values()]
    for s in ("Ada Lovelace was born in London.", "Alan Turing worked at Bletchley Park.", "He was born in 1912."):
        assert texts.count(s) == 1  # no BOM, no "\r", split after the full stop
    assert len(texts) == before + 3
    # the TEXT sentence was in the project, "Alan Turing ..." twice in the paste
    assert "Added 3 sentences; 2 were already there." in view.status.text()
    assert view.sentence_id == w.model.project.sentences.by_text("Ada Lovelace was born in London.").id


def test_pasting_nothing_keeps_the_dialog_open_with_the_reason(qtbot, app_env, tmp_path):
    w, view, _, _ = setup(qtbot, app_env, tmp_path)
    before = len(w.model.sentence_ids())
    d = PasteTextDialog(w.model, view)
    qtbot.addWidget(d)
    d.show()
    d.text.setPlainText("\ufeff\r\n \r\n\t\r\n")
    d.add_button.click()
    assert d.isVisible() and d.result_ is None and "no text to add" in d.problem.text()
    assert len(w.model.sentence_ids()) == before


def test_a_txt_import_offers_how_to_split_and_reads_bom_crlf_and_blank_lines(qtbot, app_env, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_bytes(TRICKY.encode("utf-8"))
    d = ImportDialog(None, tmp_path)
    qtbot.addWidget(d)
    d.show()
    assert not d.split_combo.isVisible()
    d.set_path(f)
    qtbot.waitUntil(d.split_combo.isVisible, timeout=5000)  # the format is detected on a pool thread
    assert d.options() == {"split": "auto"}
    d.split_combo.setCurrentIndex(d.split_combo.findData("line"))
    assert d.options() == {"split": "line"}

    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.show()
    w.create_project(tmp_path / "p")
    with qtbot.waitSignal(w.controller.jobEnded, timeout=60_000) as ended:
        w.import_file(*d.chosen(), d.options())
    assert ended.args[:2] == ["import", "finished"]
    texts = sorted(s.text for s in w.model.sentences(w.model.sentence_ids()).values())
    # one sentence per line: the second line is not split, the repeated line is one sentence
    assert texts == sorted(["Ada Lovelace was born in London.", TEXT, "Alan Turing worked at Bletchley Park.",
                            "Alan Turing worked at Bletchley Park. He was born in 1912."])


def test_a_10_mb_text_file_is_imported_whole(qtbot, app_env, tmp_path):
    f = tmp_path / "big.txt"
    line = "Sentence number {:06d} mentions Lisbon, Porto and the Brightwell Labs of Ada Quill."
    n = 10 * 1024 * 1024 // (len(line.format(0)) + 2) + 1
    f.write_bytes(("\ufeff" + "\r\n".join(line.format(i) for i in range(n)) + "\r\n\r\n").encode("utf-8"))
    assert f.stat().st_size >= 10 * 1024 * 1024
    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.show()
    w.create_project(tmp_path / "p")
    with qtbot.waitSignal(w.controller.jobEnded, timeout=600_000) as ended:
        w.import_file(f, "text", {"split": "line"})
    assert ended.args[:2] == ["import", "finished"]
    assert ended.args[2].added_sentences == n and len(w.model.sentence_ids()) == n
    first = w.model.sentence(min(w.model.sentence_ids()))
    assert first.text == line.format(0)  # no BOM, no "\r"
