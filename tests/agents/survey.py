"""Which corpus agents work end to end, and why the others do not: a table for the lead.

    python -m tests.agents.survey                      # this checkout
    python -m tests.agents.survey --at a4235b4         # also gepa_graph as it was at a commit
    python -m tests.agents.survey --agents start_router file_prompts

Each agent goes through the stages of ``_checks`` (discovery, rewrites and audit, optimize and
apply); a cell is ``ok`` or the first failing stage with its one-line cause. ``--at REV`` runs the
same corpus (this checkout's ``tests/agents``) against the package as committed at ``REV``: its
``gepa_graph``, ``integrations`` and ``tracking`` are exported to a temporary folder laid out as
installed, and the survey runs there in a child process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def survey(names: list[str]) -> dict[str, str]:
    """Agent -> ``ok`` or ``<stage>: <cause>``, run in this process."""
    from tests.agents import _checks

    warnings.simplefilter("ignore")
    results = {}
    for name in names:
        stage = "build"
        try:
            case = _checks.build(name)
            stage = "discovery"
            system = _checks.system_for(case)
            _checks.check_discovery(case, system)
            stage = "rewrites"
            _checks.check_rewrites(case, system)
            stage = "optimize"
            with tempfile.TemporaryDirectory() as folder:
                _checks.check_optimize(case, system, Path(folder))
            results[name] = "ok"
        except Exception as exc:  # every failure is a row of the table
            results[name] = f"{stage}: {cause(exc)}"
        finally:
            _checks.reload_agents()
        print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    return results


def cause(exc: BaseException) -> str:
    """One line: the error's type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, AssertionError) and not text:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        text = f"assert at {Path(frame.filename).name}:{frame.lineno}: {frame.line}"
    return f"{type(exc).__name__}: {text}"[:160]


def survey_at(rev: str, names: list[str]) -> dict[str, str]:
    """``survey`` against the package as committed at ``rev`` (a child process)."""
    with tempfile.TemporaryDirectory(prefix="survey-") as folder:
        root = Path(folder)
        archive = subprocess.run(
            ["git", "archive", rev, "gepa_graph", "integrations", "tracking"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        for part in ("integrations", "tracking"):
            (root / part).rename(root / "gepa_graph" / part)
        shutil.copytree(ROOT / "tests" / "agents", root / "tests" / "agents")
        (root / "tests" / "__init__.py").touch()
        env = {**os.environ, "PYTHONPATH": str(root), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        child = subprocess.run(
            [sys.executable, "-m", "tests.agents.survey", "--json", "--agents", *names],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            raise RuntimeError(f"survey at {rev} failed:\n{child.stderr[-2000:]}")
        return json.loads(child.stdout)


def table(columns: dict[str, dict[str, str]]) -> str:
    """A Markdown table: one row per agent, one column per code version."""
    labels = list(columns)
    names = sorted({name for column in columns.values() for name in column})
    lines = [
        "| agent | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for name in names:
        cells = [columns[label].get(name, "-").replace("|", "\\|") for label in labels]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    totals = [sum(v == "ok" for v in columns[label].values()) for label in labels]
    lines.append(
        "| **works end to end** | "
        + " | ".join(f"**{t} of {len(columns[label])}**" for t, label in zip(totals, labels))
        + " |"
    )
    return "\n".join(lines)


def main() -> None:
    from tests.agents import _checks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", action="append", default=[], help="also survey this commit")
    parser.add_argument("--agents", nargs="*", help="only these agents")
    parser.add_argument("--json", action="store_true", help="print this checkout's results as JSON")
    args = parser.parse_args()
    names = args.agents or _checks.agent_names()
    if args.json:
        import gepa_graph

        assert Path(gepa_graph.__file__).is_relative_to(Path.cwd()), gepa_graph.__file__
        print(json.dumps(survey(names)))
        return
    columns = {rev: survey_at(rev, names) for rev in args.at}
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    columns[f"this checkout ({head})"] = survey(names)
    print(table(columns))


if __name__ == "__main__":
    main()
