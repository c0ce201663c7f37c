"""Data: the example type, readers/writers, task sequences and named data sets."""

from conpet.data.datasets import Dataset, find_data_root, load_named, read_any
from conpet.data.example import Example, Span, example_id
from conpet.data.fewnerd import read_fewnerd
from conpet.data.fewrel import read_fewrel, read_pid2name
from conpet.data.jsonl import Entity, Relation, Sentence, read_jsonl, read_jsonl_sentences, write_jsonl
from conpet.data.tasks import (
    SplitError,
    TaskData,
    build_tasks,
    split_examples,
    split_types_by,
    split_types_explicit,
    split_types_random,
)

__all__ = [
    "Dataset",
    "Entity",
    "Example",
    "Relation",
    "Sentence",
    "Span",
    "SplitError",
    "TaskData",
    "build_tasks",
    "example_id",
    "find_data_root",
    "load_named",
    "read_any",
    "read_fewnerd",
    "read_fewrel",
    "read_jsonl",
    "read_jsonl_sentences",
    "read_pid2name",
    "split_examples",
    "split_types_by",
    "split_types_explicit",
    "split_types_random",
    "write_jsonl",
]
