"""``python -m gepa_graph.local [--check]``: assemble and verify the model, print its path;
``--check`` also loads it and asks it one question."""

from __future__ import annotations

import sys
import time

from gepa_graph.errors import LocalModelError
from gepa_graph.local.model import engine
from gepa_graph.local.model_file import model_path


def main(argv: list[str] | None = None) -> int:
    """Print the model's path (assembling it if needed); ``--check`` also asks it a question.
    Exit code 2 with one ``error:`` line when the model cannot be used."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        print(model_path())
        if "--check" in argv:
            started = time.monotonic()
            reply = engine().chat(
                [{"role": "user", "content": "Say hello in one word."}], max_tokens=8
            )
            text = reply["choices"][0]["message"]["content"]
            print(
                f"{engine().backend().name} replied {text!r} "
                f"({time.monotonic() - started:.1f}s with loading)"
            )
    except LocalModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
