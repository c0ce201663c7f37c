"""The ``--mention-threshold`` option of every command that proposes mentions (``conpet predict``,
``conpet evaluate``): checked as the command line is read, before any model loads."""

from __future__ import annotations

import argparse


def probability(value: str) -> float:
    """A number from 0 to 1 (argparse's ``type``)."""
    try:
        out = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}") from None
    if not 0.0 <= out <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}")
    return out


def add_mention_threshold(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mention-threshold", type=probability, default=None, metavar="S",
                        help="propose a mention when the detector's confidence in it (expert_scores.detector) is "
                             "at least S, from 0 (every proposal) to 1 (default: the threshold the model chose on "
                             "its validation sentences when it trained)")
