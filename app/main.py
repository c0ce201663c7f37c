"""Application entry point: `python main.py [PROJECT_DIR]`.

With no argument it opens the most recent project; on the very first launch it creates the demo project
(resources/demo/demo.jsonl imported through the store) in $CONPET_HOME/Demo (default ~/ConPET Studio/Demo).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _configure_environment() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from conpet.core.runtime import passive_omp_wait

    passive_omp_wait()  # before torch loads: waiting threads sleep instead of spinning beside other programs


def make_application(argv: list[str]):
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from app.settings import RESOURCES

    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("ConPET Studio")
    app.setOrganizationName("ConPET")
    app.setWindowIcon(QIcon(str(RESOURCES / "icons" / "app.svg")))
    qss = RESOURCES / "styles" / "studio.qss"
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
    return app


def main(argv: list[str] | None = None) -> int:
    _configure_environment()
    argv = list(argv if argv is not None else sys.argv)
    app = make_application(argv)

    from app.main_window import MainWindow
    from app.settings import AppSettings

    args = [a for a in argv[1:] if not a.startswith("-")]
    window = MainWindow(AppSettings())
    window.resize(1280, 800)
    window.show()
    window.open_initial_project(Path(args[0]) if args else None)
    return app.exec()
