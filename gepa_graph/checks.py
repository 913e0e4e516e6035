"""The checks ``optimize`` runs on its inputs before any paid call, each a one-line
GepaGraphError: the config with the budgets given as arguments on top, the seed prompts (the
system's own, overridden by name, no secrets), and a run folder's default name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gepa_graph.config import OptimizeConfig
from gepa_graph.errors import ConfigError, InvalidInput
from gepa_graph.redact import find_secret
from gepa_graph.system import System


def merge_budgets(
    config: OptimizeConfig | Mapping[str, Any] | None,
    max_rollouts: int | None,
    max_cost_usd: float | None,
    max_seconds: float | None,
) -> OptimizeConfig:
    """``config`` (an OptimizeConfig, a dict of its fields, or None) with the budgets given as
    arguments on top; ConfigError in one line for anything invalid."""
    if isinstance(config, OptimizeConfig):
        base = config.model_dump(exclude_unset=False)
    elif isinstance(config, Mapping):
        base = dict(config)
    elif config is None:
        base = {}
    else:
        raise ConfigError(
            f"config must be a gg.OptimizeConfig or a dict, got {type(config).__name__}"
        )
    for name, value in (
        ("max_rollouts", max_rollouts),
        ("max_cost_usd", max_cost_usd),
        ("max_seconds", max_seconds),
    ):
        if value is not None:
            base[name] = value
    return OptimizeConfig(**base)


def checked_seed_prompts(system: System, overrides: Mapping[str, str] | None) -> dict[str, str]:
    """The system's modules with ``overrides`` on top: InvalidInput for a system without
    modules or an unknown name, ConfigError for a text that is not a str or holds a secret."""
    seeds = dict(system.modules())
    if not seeds:
        raise InvalidInput("the system has no modules (prompts) to optimize")
    for name, text in (overrides or {}).items():
        if name not in seeds:
            raise InvalidInput(
                f"seed_prompts names unknown module {name!r}; modules are {sorted(seeds)}"
            )
        seeds[name] = text
    for name, text in seeds.items():
        if not isinstance(text, str):
            raise ConfigError(
                f"the seed prompt of module {name!r} is a {type(text).__name__}, not a str"
            )
        secret = find_secret(text)
        if secret is not None:
            raise ConfigError(
                f"the seed prompt of module {name!r} holds {secret}; keep secrets out of "
                "prompts (they would be sent to the reflection LM and stored)"
            )
    return seeds


def new_run_dir() -> Path:
    """A new folder name under ./gepa_runs, by the time (to the microsecond)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path("gepa_runs") / f"run-{stamp}"
