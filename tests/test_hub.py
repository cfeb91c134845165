"""Published weights in our GPT: safetensors read from scratch, GPT-2 and LLaMA-architecture folders loaded and
compared with transformers' own models (tiny random ones saved to tmp_path; no network)."""

import json
import struct

import pytest
import torch

from helpers import hub

transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")


def _randomise(model, scale: float = 0.1):
    """Non-trivial norms and biases, so that every parameter matters to the logits."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, scale)
            elif "ln" in name or "norm" in name:
                p.normal_(1.0, scale)
            elif "c_fc" in name:
                p.normal_(0.0, 0.5)  # pre-activations of order 1, where the two GELUs differ
    return model.eval()


def _same_logits(ours, theirs, vocab: int, length: int):
    idx = torch.randint(vocab, (2, length), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], theirs(idx).logits, atol=1e-5, rtol=1e-4)


def test_read_safetensors_equals_the_library(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(6, dtype=torch.int64).reshape(2, 3),
               "c": torch.randn(5).to(torch.bfloat16), "d": torch.randn(2, 2).half(), "e": torch.zeros(0, 3)}
    safetensors_torch.save_file(tensors, tmp_path / "x.safetensors", metadata={"format": "pt"})
    ours = hub.read_safetensors(tmp_path / "x.safetensors")
    theirs = safetensors_torch.load_file(tmp_path / "x.safetensors")
    assert ours.keys() == theirs.keys() == tensors.keys()
    for name in tensors:
        assert ours[name].dtype == theirs[name].dtype and torch.equal(ours[name], theirs[name])


def test_damaged_and_foreign_files_are_named(tmp_path):
    safetensors_torch.save_file({"a": torch.randn(16)}, tmp_path / "ok.safetensors")
    data = (tmp_path / "ok.safetensors").read_bytes()
    bad_dtype = json.dumps({"a": {"dtype": "Q9", "shape": [16], "data_offsets": [0, 64]}}).encode()
    cases = {"short": (data[:5], "shorter than its 8-byte header size"), "truncated": (data[:-8], "damaged"),
             "pickle": (b"\x80\x04\x95" + bytes(40), "header of .* bytes announced"),
             "not json": (struct.pack("<Q", 4) + b"\xff\xfe{]" + bytes(8), "not JSON"),
             "bad dtype": (struct.pack("<Q", len(bad_dtype)) + bad_dtype + bytes(64), "expected a dtype")}
    for name, (blob, message) in cases.items():
        (tmp_path / f"{name}.safetensors").write_bytes(blob)
        with pytest.raises(ValueError, match=message):
            hub.read_safetensors(tmp_path / f"{name}.safetensors")
    with pytest.raises(FileNotFoundError, match="no safetensors file"):
        hub.read_safetensors(tmp_path / "missing.safetensors")


def test_a_gpt2_folder_loads_into_our_gpt_with_the_same_logits(tmp_path):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=97, n_positions=40, n_embd=48, n_layer=2, n_head=4,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    theirs = _randomise(transformers.GPT2LMHeadModel(config))
    theirs.save_pretrained(tmp_path)  # config.json + model.safetensors, the Hub's layout
    ours = hub.load_pretrained(tmp_path)
    assert ours.config.gelu_approximate == "tanh" and ours.config.block_size == 40 and not ours.training
    _same_logits(ours, theirs, 97, 40)
    short = hub.load_pretrained(tmp_path, block_size=16)  # a shorter context: the first 16 positions' logits
    idx = torch.randint(97, (1, 16))
    with torch.no_grad():
        torch.testing.assert_close(short(idx)[0], theirs(idx).logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kv_heads, tied", [(4, False), (2, True), (1, True)])
def test_a_llama_folder_loads_with_grouped_query_attention(tmp_path, kv_heads, tied):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=89, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=kv_heads,
                                      max_position_embeddings=32, rms_norm_eps=1e-5, rope_theta=100000.0,
                                      tie_word_embeddings=tied)
    theirs = _randomise(transformers.LlamaForCausalLM(config))
    theirs.save_pretrained(tmp_path)
    ours = hub.load_pretrained(tmp_path)
    assert ours.config.rope_base == 100000.0 and ours.config.norm_eps == 1e-5 and ours.config.tie_weights == tied
    _same_logits(ours, theirs, 89, 32)


def test_a_folder_that_cannot_load_says_why(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json and model.safetensors"):
        hub.load_pretrained(tmp_path)
    config = transformers.GPT2Config(vocab_size=31, n_positions=8, n_embd=16, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    spec = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**spec, "model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert'"):
        hub.load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**spec, "n_embd": 32}))
    with pytest.raises(ValueError, match="do not fit the sizes in config.json"):
        hub.load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="block_size must be between 1 and the model's 8 learned positions"):
        hub.load_pretrained(tmp_path, block_size=16)
    assert hub.load_pretrained(tmp_path, block_size=4).config.block_size == 4


def test_download_keeps_a_good_file_and_refuses_a_wrong_hash(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"two files")
    good = "b0b1e0d1b5f1b84a5f86b52d0fb0fb2a5c3b8d7d3bd1c4ebc6f3ad17a1b6f8c0"  # not the real hash
    import hashlib

    real = hashlib.sha256(b"two files").hexdigest()
    got = hub.download(source.as_uri(), tmp_path / "cache" / "x.bin", sha256=real, progress=False)
    assert got.read_bytes() == b"two files" and not list((tmp_path / "cache").glob("*.part"))
    with pytest.raises(ValueError, match="expected b0b1"):
        hub.download(source.as_uri(), tmp_path / "cache" / "y.bin", sha256=good, progress=False)
    assert not (tmp_path / "cache" / "y.bin").exists()
