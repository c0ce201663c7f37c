"""What a text selection in the editor can be: widened to whole words, or refused with the reason in words."""

from __future__ import annotations


def _in_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a selection that starts or ends inside a word to the whole word (a mouse drag rarely lands
    exactly on a word's edge); a selection on word boundaries is kept as it is."""
    if start < end:
        while start > 0 and _in_word(text[start - 1]) and _in_word(text[start]):
            start -= 1
        while end < len(text) and _in_word(text[end]) and _in_word(text[end - 1]):
            end += 1
    return start, end


def selection_problem(text: str, start: int, end: int) -> str | None:
    """Why a selection can't be a mention, in words; None when it can."""
    piece = text[start:end]
    if not piece.strip():
        return "The selection is empty or only spaces."
    if "\n" in piece:
        return "A mention can't span several lines."
    # a selection that cuts a word in half is almost always a slip of the mouse
    if start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        return f"The selection starts inside a word ({text[max(0, start - 6):end]!r}); select whole words."
    if end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
        return f"The selection ends inside a word ({text[start:end + 6]!r}); select whole words."
    return None
