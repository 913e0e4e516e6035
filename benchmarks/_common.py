"""Shared helpers: machine description, statistics, JSON results, markdown tables."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("gepa-graph", "gepa", "langgraph", "langchain-core", "mlflow", "litellm"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "versions": versions,
    }


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def command(module: str, argv: Sequence[str] | None) -> str:
    """The command line that reproduces a benchmark run, for its results file."""
    return f"python -m benchmarks.{module} " + " ".join(argv if argv is not None else sys.argv[1:])


def publish(path: str | Path, results: dict[str, Any], markdown: str) -> None:
    """Write a benchmark's results JSON and print its machine line and tables."""
    write_json(path, results)
    print(machine_line(results["machine"]))
    print(markdown)


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    values = list(values)
    if not values:
        return math.nan, math.nan
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), sd


def fmt_mean_sd(values: Iterable[float], digits: int = 3) -> str:
    mean, sd = mean_sd(values)
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value))):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "never"
    return f"{value:.{digits}f}{suffix}"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(info: dict[str, Any]) -> str:
    v = info.get("versions", {})
    return (
        f"{info['date']}, {info['cpu']} ({info['cores']} cores), Python {info['python']}, "
        f"gepa-graph {v.get('gepa-graph')}, gepa {v.get('gepa')}, langgraph {v.get('langgraph')}"
    )
