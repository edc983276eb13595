"""Makes the policy pack (policy/) and the project root importable for the policy tests."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "policy"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
