"""The README's Architecture section is the map of the code: every module of the core, the CLI,
the integrations and tracking is named there, and every file it names exists (the apps
``local/`` and ``testing/`` are described as folders)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS_DESCRIBED_WHOLE = ("gepa_graph/local", "gepa_graph/testing")


def architecture_block() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Architecture")
    fence = text.index("```", start)
    return text[fence : text.index("```", fence + 3)]


def modules() -> list[Path]:
    found = []
    for root in ("gepa_graph", "integrations", "tracking"):
        for path in sorted((ROOT / root).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if path.name == "__init__.py" or relative.startswith(FOLDERS_DESCRIBED_WHOLE):
                continue
            found.append(path)
    return found


def test_every_module_is_on_the_map():
    block = architecture_block()
    named = set(re.findall(r"[\w]+\.py", block))
    missing = [p.relative_to(ROOT).as_posix() for p in modules() if p.name not in named]
    assert missing == []


def test_every_file_on_the_map_exists():
    names = {
        p.name
        for root in ("gepa_graph", "integrations", "tracking")
        for p in (ROOT / root).rglob("*.py")
    }
    named = set(re.findall(r"(?<![\w/])(\w+\.py)", architecture_block()))
    assert sorted(named - names) == []
