"""Experiment tracking with wandb: offline by default (``WANDB_MODE=online`` and a login to sync)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def wandb_run(project: str, name: str, config: dict[str, Any], *, directory: str | os.PathLike[str]) -> Iterator[Any]:
    """A wandb run that writes under ``directory`` (``wandb/`` there); finished on every exit path."""
    import wandb

    Path(directory).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=project,
        name=name,
        config=config,
        dir=str(directory),
        mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
        reinit="finish_previous",
    )
    try:
        yield run
    finally:
        run.finish()
