import math

import pytest

from conftest import has_data
from helpers import artifacts, data, stages


@pytest.mark.skipif(not has_data("tinyshakespeare"), reason="Tiny Shakespeare is not available offline")
def test_char_gpt_learns_at_smoke_scale(course_home):
    model, meta = artifacts.load_or_build("char_gpt", "smoke", lambda s: stages.build_char_gpt(s, progress=False))
    assert meta["steps"] == stages.CHAR_GPT_SIZES["smoke"][1].max_steps
    assert meta["val_loss"] < math.log(len(meta["chars"])) - 0.3  # well below guessing uniformly
    assert data.CharTokenizer(list(meta["chars"])).vocab_size == model.config.vocab_size == 65
    reloaded, _ = artifacts.load(artifacts.checkpoint_path("char_gpt", "smoke"))
    assert reloaded.config == model.config


def test_every_scale_has_sizes():
    assert set(stages.CHAR_GPT_SIZES) == {"smoke", "cpu", "gpu"}
