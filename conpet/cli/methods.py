"""`conpet methods`: every continual method with a one-line description and what it does with labels added
to types it has learnt (its `new_labels`, `conpet.methods.refresh`); the default of new projects is marked
`(default)`."""

from __future__ import annotations

import argparse
from typing import Any


def list_methods(args: argparse.Namespace) -> int:
    from conpet.methods.registry import describe_method, method_class, method_names
    from conpet.project.training import DEFAULT_METHOD

    names = method_names()
    width = max(len(n) for n in names) + len(" (default)")
    for name in names:
        label = f"{name} (default)" if name == DEFAULT_METHOD else name
        cls = method_class(name)
        print(f"{label:<{width}}  {describe_method(name)}; new labels of learnt types ({cls.new_labels}): "
              f"{cls.new_labels_text}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("methods", help="list the continual methods (the default one is marked)",
                              description=__doc__)
    p.set_defaults(func=list_methods)
