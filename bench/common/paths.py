"""Where bench scripts find the repository, write their tables and keep the archived study records."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: scripts run from here (python -m bench.<folder>.<script>)
OUT_DIR = ROOT / "bench" / "out"  # every script's Markdown table and run folders (git-ignored)
DATA = ROOT / "bench" / "data"  # the archived studies, study/ and study-answers/ (izkit.studies.study.archived_study)
