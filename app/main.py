"""Application entry point."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication(argv or sys.argv)
    app.setApplicationName("ConPET Studio")
    window = QMainWindow()
    window.setWindowTitle("ConPET Studio")
    window.setCentralWidget(QLabel("ConPET Studio"))
    window.resize(1200, 760)
    window.show()
    return app.exec()
