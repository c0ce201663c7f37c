"""`app.dialogs`: no test switch in the app; an unattended script replaces the message boxes itself."""

from __future__ import annotations

from app import dialogs


def test_an_unattended_script_gets_its_answer_and_no_message_boxes(monkeypatch):
    originals = {name: getattr(dialogs, name) for name in ("warn", "inform", "ask", "saved")}
    for name, fn in originals.items():
        monkeypatch.setattr(dialogs, name, fn)  # restored after the test
    dialogs.answer_without_asking(False)
    assert dialogs.ask(None, "Delete?", "Really?") is False
    for name in ("warn", "inform", "saved"):
        assert getattr(dialogs, name) is not originals[name]  # a modal box would block the script
        assert getattr(dialogs, name)(None, "title", "text") is None
    assert not hasattr(dialogs, "AUTO_ANSWER") and not hasattr(dialogs, "shown")
