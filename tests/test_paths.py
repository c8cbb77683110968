"""The cache root: $SAESTEER_CACHE when set and not empty, else the user cache directory."""

from __future__ import annotations

from pathlib import Path

from saesteer.paths import cache_dir


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SAESTEER_CACHE", str(tmp_path / "mine"))
    assert cache_dir("models") == tmp_path / "mine" / "models"
    monkeypatch.setenv("SAESTEER_CACHE", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert cache_dir("models") == tmp_path / "xdg" / "saesteer" / "models"
    assert not Path("models").exists()  # an empty variable never means the working directory
