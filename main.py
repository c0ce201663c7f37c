"""ConPET Studio: `python main.py [PROJECT_DIR]` opens the desktop app (the demo project by default)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from app.main import main

    sys.exit(main(sys.argv))
