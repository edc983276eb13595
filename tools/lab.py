"""The local lab's command (the code lives in lab/; see lab/cli.py).

python3 -m tools.lab up|down|status [--workers N] [--instance NAME]
"""

from __future__ import annotations

import sys

from .common import in_project_venv

if __name__ == "__main__":
    in_project_venv("tools.lab")
    from lab.cli import main

    sys.exit(main())
