"""Sentences typed or pasted into the app: split like a plain text file (``conpet.data.plaintext``) and
added in one transaction, counting what was new and what the project had already."""

from __future__ import annotations

from dataclasses import dataclass

from app.viewmodels.project_model import ProjectModel
from conpet.core.errors import ConpetError
from conpet.data.plaintext import split_text


@dataclass(frozen=True)
class AddedText:
    ids: list[int]  # one per sentence found, in order (an existing sentence's id for a duplicate)
    added: int
    duplicates: int  # already in the project, or twice in the text

    def summary(self) -> str:
        dup = f"; {self.duplicates} {'was' if self.duplicates == 1 else 'were'} already there" if self.duplicates else ""
        return f"Added {self.added} sentence{'s' if self.added != 1 else ''}{dup}."


def add_text(model: ProjectModel, text: str, split: str = "auto", source: str = "pasted") -> AddedText:
    """Split ``text`` into sentences ("auto": paragraphs split into sentences; "line": one per line) and
    add the new ones. Raises ConpetError (adding nothing) when the text holds no sentence."""
    sentences = [s for _, s in split_text(text, split)]
    if not sentences:
        raise ConpetError("There is no text to add: the box is empty or only blank lines.")
    rows = model.add_sentences(sentences, source)
    added = sum(created for _, created in rows)
    return AddedText([i for i, _ in rows], added, len(rows) - added)
