"""Experiment tracking with wandb: offline by default (``WANDB_MODE=online`` and a login to sync)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def wandb_run(
    project: str | None,
    config: dict[str, Any],
    *,
    directory: str | os.PathLike[str],
    name: str | None = None,
    job_type: str | None = None,
) -> Iterator[Any]:
    """A wandb run writing under ``directory`` (None when ``project`` is None); finished on every exit path."""
    if project is None:
        yield None
        return
    import wandb

    Path(directory).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=project,
        name=name,
        job_type=job_type,
        config=config,
        dir=str(directory),
        mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
        reinit="finish_previous",
    )
    try:
        yield run
    finally:
        run.finish()
