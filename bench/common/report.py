"""What every bench script does with its result: print the Markdown and keep a copy in bench/out/ (git-ignored)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.common.paths import OUT_DIR


def emit(text: str, name: str) -> Path:
    """Print ``text`` and write it to ``bench/out/<name>.md``; return that path."""
    print(text)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.md"
    path.write_text(text.rstrip("\n") + "\n")
    print(f"written to {path}", file=sys.stderr)
    return path
