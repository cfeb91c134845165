import math

import pytest
import torch

from conftest import has_data
from helpers import artifacts, data, miniweb, reward, stages
from helpers import tokenizer as tok


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
    assert set(stages.BASE_SIZES) == {"smoke", "cpu", "gpu"} == set(stages.TOKENIZER_VOCAB) == set(stages.SFT_SIZES)
    assert set(stages.READER_SIZES) == {"smoke", "cpu", "gpu"}


needs_shakespeare = pytest.mark.skipif(not has_data("tinyshakespeare"), reason="Tiny Shakespeare is not available")


@needs_shakespeare
def test_tokenizer_stage_reserves_specials_splits_digits_and_reloads(course_home):
    tokenizer = stages.load_tokenizer("smoke")
    assert tokenizer.vocab_size == stages.TOKENIZER_VOCAB["smoke"]
    assert set(stages.SPECIAL_TOKENS) <= set(tokenizer.special_tokens)
    assert [tokenizer.decode([i]) for i in tokenizer.encode("x 1296")][-4:] == ["1", "2", "9", "6"]
    assert stages.tokenizer_path("smoke").exists()
    again = stages.load_tokenizer("smoke")  # from the file this time
    assert again.ranks == tokenizer.ranks and again.special_tokens == tokenizer.special_tokens


def test_tokenizer_stage_refuses_corrupt_and_foreign_files(course_home):
    path = stages.tokenizer_path("smoke")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid tokenizer file"):
        stages.load_tokenizer("smoke")
    tok.Tokenizer({bytes([b]): b for b in range(256)}, "gpt4-digits", {tok.BOS: 256}).save(path)
    with pytest.raises(ValueError, match="not the course tokenizer"):
        stages.load_tokenizer("smoke")


def test_encode_docs_opens_every_document_with_bos():
    tokenizer = tok.Tokenizer({bytes([b]): b for b in range(256)}, "gpt4-digits", {tok.BOS: 256})
    docs = [miniweb.Document(0, "qa", "ab"), miniweb.Document(1, "qa", "c")]
    assert stages.encode_docs(docs, tokenizer).tolist() == [256, 97, 98, 256, 99]
    train_docs, held = stages.split_docs(list(range(45)), every=20)
    assert held == [0, 20, 40] and len(train_docs) == 42


@needs_shakespeare
def test_base_stage_at_smoke_scale_learns_and_samples(course_home):
    model, meta = artifacts.load_or_build("base", "smoke", lambda s: stages.build_base(s, progress=False))
    config = stages.BASE_SIZES["smoke"][0]
    assert (model.config.norm, model.config.mlp, model.config.pos) == ("rmsnorm", "swiglu", "rope")
    assert model.config.vocab_size == stages.TOKENIZER_VOCAB["smoke"] and model.config.n_embd == config.n_embd
    assert meta["history"]["val_loss"][-1] < meta["history"]["val_loss"][0] - 0.1  # 10 steps at smoke
    assert [step for step, _ in meta["samples"]][0] == 0 and meta["samples"][-1][0] == meta["steps"]
    assert not (course_home / "runs" / "base-smoke.pt").exists()  # the resume file is gone once saved
    artifacts.save(model, artifacts.checkpoint_path("base", "cpu"), meta)  # the smoke model in the cpu place
    with pytest.raises(artifacts.CheckpointError, match="'base' at scale 'smoke', not 'base' at 'cpu'"):
        artifacts.load_or_build("base", "cpu", stages.build_base)


def test_tokenizer_stage_uses_the_clean_web_it_is_given(course_home, monkeypatch):
    def no_cleaning(scale):
        raise AssertionError("clean_web ran although the caller passed the clean documents")

    monkeypatch.setattr(stages, "clean_web", no_cleaning)
    docs = [miniweb.Document(i, "qa", f"Q: What is {i}+{i}?\nA: {2 * i}") for i in range(50)]
    tokenizer = stages.load_tokenizer("smoke", docs=docs)
    assert set(stages.SPECIAL_TOKENS) <= set(tokenizer.special_tokens) and stages.tokenizer_path("smoke").exists()


@needs_shakespeare
def test_sft_stage_builds_the_base_it_needs_and_lowers_the_answer_loss(course_home):
    model, meta = artifacts.load_or_build("sft", "smoke", lambda s: stages.build_sft(s, progress=False))
    assert artifacts.checkpoint_path("base", "smoke").exists()  # built on the way
    n, config = stages.SFT_SIZES["smoke"]
    assert meta["steps"] == config.max_steps and meta["examples"] == n * 8  # 7 trained families + writing
    assert meta["history"]["val_loss"][-1] < meta["history"]["val_loss"][0] - 0.1  # 10 steps at smoke
    base, _ = artifacts.load(artifacts.checkpoint_path("base", "smoke"))
    assert any((a - b).abs().max() > 0 for a, b in zip(model.parameters(), base.parameters()))


@needs_shakespeare
def test_reward_stage_builds_from_the_sft_model_and_carries_its_preference_data(course_home):
    rm, meta = artifacts.load_or_build("reward", "smoke", lambda s: stages.build_reward_model(s, progress=False))
    assert artifacts.checkpoint_path("sft", "smoke").exists()  # built on the way
    n_train, n_held, k, config = stages.REWARD_SIZES["smoke"]
    assert len(meta["preferences"]) == n_train and len(meta["held_out"]) == n_held
    assert meta["pairs"] == n_train * k * (k - 1) // 2 and len(meta["losses"]) == config.max_steps
    assert all(len(r["A"]) == len(r["answers"]) == k for r in meta["preferences"])
    assert all("B" in r for r in meta["held_out"]) and 0.0 <= meta["held_out_accuracy"] <= 1.0
    again, _ = artifacts.load(artifacts.checkpoint_path("reward", "smoke"))
    assert isinstance(again, reward.RewardModel)
    pairs = reward.preference_pairs(meta["preferences"], [r["A"] for r in meta["preferences"]])
    torch.testing.assert_close(reward.score(again, stages.load_tokenizer("smoke"), [p.prompt for p in pairs[:3]],
                                            [p.chosen for p in pairs[:3]]),
                               reward.score(rm, stages.load_tokenizer("smoke"), [p.prompt for p in pairs[:3]],
                                            [p.chosen for p in pairs[:3]]))


@needs_shakespeare
def test_ppo_and_dpo_stages_start_from_the_sft_model_and_record_their_curves(course_home):
    policy, meta = artifacts.load_or_build("ppo", "smoke", lambda s: stages.build_ppo(s, progress=False))
    config, iterations, *_ = stages.PPO_SIZES["smoke"]
    assert artifacts.checkpoint_path("reward", "smoke").exists()  # built on the way
    assert meta["kl_coef"] == config.kl_coef and len(meta["history"]["gold"]) == iterations
    assert isinstance(artifacts.load(artifacts.checkpoint_path("ppo", "smoke"))[0], stages.GPT)
    hacked, hacked_meta = stages.ppo_run("smoke", kl_coef=0.0, iterations=2, progress=False)
    assert hacked_meta["kl_coef"] == 0.0 and len(hacked_meta["history"]["score"]) == 2
    dpo_model, dpo_meta = artifacts.load_or_build("dpo", "smoke", lambda s: stages.build_dpo(s, progress=False))
    beta, min_margin, dpo_config = stages.DPO_SIZES["smoke"]
    assert dpo_meta["beta"] == beta and len(dpo_meta["history"]["loss"]) == dpo_config.max_steps
    sft_model, _ = artifacts.load(artifacts.checkpoint_path("sft", "smoke"))
    moved = [any((a - b).abs().max() > 0 for a, b in zip(m.parameters(), sft_model.parameters()))
             for m in (policy, dpo_model)]
    assert moved == [True, True]


@needs_shakespeare
def test_reader_stage_fine_tunes_the_base_on_reading_exercises(course_home):
    model, meta = artifacts.load_or_build("reader", "smoke", lambda s: stages.build_reader(s, progress=False))
    config = stages.READER_SIZES["smoke"]
    assert meta["stage"] == "reader" and meta["steps"] == config.max_steps
    assert meta["examples"] == config.max_steps * config.batch_size  # one fresh exercise per row
    assert meta["history"]["val_loss"][-1] < meta["history"]["val_loss"][0]
    base, _ = artifacts.load(artifacts.checkpoint_path("base", "smoke"))
    assert any((a - b).abs().max() > 0 for a, b in zip(model.parameters(), base.parameters()))
