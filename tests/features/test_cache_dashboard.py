"""The store cache skips the model on a second call; the dashboard page, PNGs and a real headless browser."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from saesteer.features.activations import Settings
from saesteer.features.cache import cached_summary
from saesteer.features.dashboard import token_text, write_dashboard
from saesteer.features.logit_lens import final_norm, logit_lens
from saesteer.store import Store
from tests.conftest import store_with_sae


def test_second_call_comes_from_the_store_without_a_forward(tmp_path, smollm2, smollm2_sae):
    model, tokenizer = smollm2
    store = Store(store_with_sae(tmp_path / "store", smollm2_sae[0]))
    record = store.get("sae-l8", kind="sae")
    sae = store.load("sae-l8", model, kind="sae")
    settings = Settings(tokens=512, context=64, top_k=3)
    forwards = []
    handle = model.register_forward_pre_hook(lambda module, args: forwards.append(1))
    try:
        first, hit_first = cached_summary(store, record, model, tokenizer, sae, settings, progress=False)
        calls = len(forwards)
        second, hit_second = cached_summary(store, record, model, tokenizer, sae, settings, progress=False)
        assert len(forwards) == calls  # no forward at all on the cached call
        _, hit_other = cached_summary(
            store, record, model, tokenizer, sae, Settings(tokens=512, context=64, top_k=2), progress=False
        )
    finally:
        handle.remove()
    assert (hit_first, hit_second, hit_other) == (False, True, False)
    assert calls > 0 and len(forwards) > calls  # other settings are another key
    for name, value in first.tensors().items():
        torch.testing.assert_close(second.tensors()[name], value)
    assert len(store.find(kind="feature_summary")) == 2


def test_logit_lens_applies_the_final_norm_gain(smollm2, smollm2_sae):
    model, tokenizer = smollm2
    sae = smollm2_sae[0]
    norm, path = final_norm(model)
    assert path == "model.norm" and norm is not None
    lens = logit_lens(model, tokenizer, sae, [0, 5], k=4)
    direction = sae.W_dec[5].float() * norm.weight.float()
    expected = (direction @ model.get_output_embeddings().weight.float().T).topk(4).values
    assert [v for _, v in lens[5].top] == pytest.approx(expected.tolist(), rel=1e-4)
    assert lens[5].top[0][1] > lens[5].bottom[0][1]


def _dashboard(tmp_path: Path, smollm2, smollm2_sae, small_summary) -> tuple[Path, list[int]]:
    model, tokenizer = smollm2
    features = small_summary.most_active(6)
    lens = logit_lens(model, tokenizer, smollm2_sae[0], features)
    page = write_dashboard(tmp_path / "dash", tokenizer, small_summary, features, lens, {"sae": "sae-l8", "layer": 8})
    return page, features


def _context_text(tokenizer, summary, feature: int) -> str:
    """The latent's best context as the page shows it: the peak token and the three before it."""
    _, ids, acts = next(summary.contexts(feature))
    peak = int(acts.argmax())
    return "".join(token_text(tokenizer, int(i)) for i in ids[max(0, peak - 3) : peak + 1])


def test_dashboard_page_and_pngs(tmp_path, smollm2, smollm2_sae, small_summary):
    page, features = _dashboard(tmp_path, smollm2, smollm2_sae, small_summary)
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and '<input id="q"' in text and "<script>" in text
    for feature in features:
        assert f'id="f{feature}"' in text and f'src="png/feature_{feature}.png"' in text
        png = page.parent / "png" / f"feature_{feature}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert text.count('class="ctx"') == sum(len(list(small_summary.contexts(f))) for f in features)
    assert "background:rgba(255,120,0,1.00)" in text  # each latent's max token is fully highlighted
    assert "promotes:" in text and "suppresses:" in text and "density" in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary on this machine (apt-get install chromium)")
def test_dashboard_in_headless_chromium(tmp_path, smollm2, smollm2_sae, small_summary):
    page, features = _dashboard(tmp_path, smollm2, smollm2_sae, small_summary)
    feature = features[2]
    url = f"{page.as_uri()}?q=%23{feature}"
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    dom = done.stdout
    assert f"1 of {len(features)} features" in dom  # the inline script ran and filtered by ?q=#id
    tags = dict(re.findall(r'<div class="feature" id="f(\d+)"([^>]*)>', dom))
    assert sorted(map(int, tags)) == sorted(features)
    shown = [int(f) for f, attributes in tags.items() if "display: none" not in attributes]
    assert shown == [feature]
    card = dom[dom.index(f'id="f{feature}"') :]
    end = card.find('<div class="feature"', 1)
    card = card if end < 0 else card[:end]
    shown_text = html.unescape(re.sub(r"<[^>]+>", "", card))
    assert _context_text(smollm2[1], small_summary, feature) in shown_text
