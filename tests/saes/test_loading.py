from __future__ import annotations

import pytest
import torch

from saesteer.errors import SAEError
from saesteer.saes import check_sae_fits, load_sae


def test_sae_lens_directory_round_trip_and_fit_check(tmp_path, smollm2, smollm2_sae):
    sae, _ = smollm2_sae
    sae.save_model(tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    x = torch.randn(4, 576) * 30
    torch.testing.assert_close(loaded.encode(x), sae.encode(x))
    check_sae_fits(smollm2[0], loaded)


def test_width_mismatch_and_bad_sources(tmp_path, smollm2):
    from sae_lens import TopKSAE, TopKSAEConfig

    narrow = TopKSAE(TopKSAEConfig(d_in=512, d_sae=64, k=4))
    with pytest.raises(SAEError, match="hidden size 576"):
        check_sae_fits(smollm2[0], narrow)
    with pytest.raises(SAEError, match=r"cfg\.json"):
        load_sae(tmp_path)
    with pytest.raises(SAEError, match="--sae-id"):
        load_sae("some-release")
