"""The main job end to end, and the open-ended effect CAA must show on the real model."""

from __future__ import annotations

import json

from scipy.stats import spearmanr

from saesteer.quickstart import run_quickstart
from saesteer.store import Store


def test_quickstart_moves_sentiment_with_the_multiplier_until_text_collapses(tmp_path, smollm2):
    results = run_quickstart(tmp_path, alphas=(-8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0))
    sweep = {row["alpha"]: row for row in results["sweep"]}
    fluent = sorted(a for a, row in sweep.items() if not row["collapsed"])
    assert 0.0 in fluent and len(fluent) >= 4
    sentiment = {a: sweep[a]["sentiment"] for a in fluent}
    assert all(sentiment[a] < sentiment[0.0] - 0.1 for a in fluent if a < 0), sweep  # negative side: less positive
    assert max(sentiment[a] for a in fluent if a > 0) > sentiment[0.0] + 0.1, sweep  # positive side: more
    assert spearmanr(fluent, [sentiment[a] for a in fluent]).statistic > 0.75, sweep  # rises with alpha overall
    assert sentiment[fluent[-1]] - sentiment[fluent[0]] > 0.5
    assert sweep[-8.0]["collapsed"] or sweep[8.0]["collapsed"]  # the fluency proxy marks collapse
    assert sweep[-8.0]["distinct_2"] < sweep[0.0]["distinct_2"]

    assert Store(tmp_path / "store").load("sentiment-l8").layer == 8
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["sweep"] == results["sweep"]
    assert (tmp_path / "sentiment_sweep.png").stat().st_size > 10_000
    assert "| +4 |" in (tmp_path / "report.md").read_text()
