"""``saesteer features search|dash`` end to end on SmolLM2 and the session's test SAE."""

from __future__ import annotations

import pytest

from saesteer.cli.main import main
from tests.conftest import store_with_sae


@pytest.fixture
def sae_store(tmp_path, monkeypatch, smollm2, smollm2_sae):
    import saesteer.models

    monkeypatch.setattr(saesteer.models, "load_model", lambda name: smollm2)
    return store_with_sae(tmp_path / "store", smollm2_sae[0])


def test_search_text_lists_latents_per_token(sae_store, capsys):
    assert main(["features", "search", "--store", sae_store, "--sae", "sae-l8", "def main(argv):", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "top 3 latents per token" in out and "'def'" in out and "argv" in out


def test_search_concept_ranks_latents(sae_store, capsys):
    argv = ["features", "search", "--store", sae_store, "--sae", "sae-l8", "--concept", "C/C++", "--top", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "concept 2:" in out and "AUROC" in out and "36 vs 108 texts" in out


def test_search_needs_text_or_concept(sae_store, capsys):
    assert main(["features", "search", "--store", sae_store, "--sae", "sae-l8"]) == 2
    assert "Fix:" in capsys.readouterr().out


def test_dash_writes_page_then_reads_the_cache(sae_store, tmp_path, capsys):
    out = tmp_path / "dash"
    argv = ["features", "dash", "--store", sae_store, "--sae", "sae-l8", "--top", "4", "--tokens", "512"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "computed and cached" in capsys.readouterr().out
    assert main([*argv, "--out", str(out), "--corpus", "python-docs"]) == 0
    assert "from the store cache" in capsys.readouterr().out
    assert (out / "index.html").read_text().count('class="feature"') == 4
    assert main([*argv[:-4], "--features", "5000", "--tokens", "512", "--out", str(out)]) == 2
    assert "Fix:" in capsys.readouterr().out
