import hashlib
import io
import urllib.error

import numpy as np
import pytest
import torch

from conftest import has_data
from helpers import data

CONTENT = b"to be or not to be\n" * 100


@pytest.fixture
def fake_file(monkeypatch):
    """A registry entry for a small file whose contents we know."""
    spec = data.DataFile("fake.txt", "https://example.invalid/fake.txt",
                         hashlib.sha256(CONTENT).hexdigest(), len(CONTENT), "test file")
    monkeypatch.setitem(data.REGISTRY, "fake", spec)
    return spec


def serve(monkeypatch, payload: bytes | None):
    """Replace the network: return ``payload`` for any URL, or fail as if offline when it is None."""
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        if payload is None:
            raise urllib.error.URLError("network is unreachable")
        return io.BytesIO(payload)

    monkeypatch.setattr(data.urllib.request, "urlopen", urlopen)
    return calls


def test_registry_entries_are_complete():
    for name, spec in data.REGISTRY.items():
        assert len(spec.sha256) == 64 and spec.url.startswith("https://") and spec.size > 0, name


def test_unknown_name_lists_the_registry():
    with pytest.raises(KeyError, match="tinyshakespeare"):
        data.fetch("no-such-data")


def test_fetch_prefers_course_data(fake_file, course_home, tmp_path, monkeypatch):
    folder = tmp_path / "usb"
    folder.mkdir()
    (folder / "fake.txt").write_bytes(CONTENT)
    monkeypatch.setenv("COURSE_DATA", str(folder))
    calls = serve(monkeypatch, None)
    assert data.fetch("fake") == folder / "fake.txt"
    assert calls == []


def test_wrong_local_file_is_a_clear_error_and_is_kept(fake_file, course_home, tmp_path, monkeypatch):
    folder = tmp_path / "usb"
    folder.mkdir()
    (folder / "fake.txt").write_bytes(b"something else")
    monkeypatch.setenv("COURSE_DATA", str(folder))
    with pytest.raises(data.ChecksumError, match="fake.txt.*sha256"):
        data.fetch("fake")
    assert (folder / "fake.txt").read_bytes() == b"something else"


def test_download_is_verified_and_cached(fake_file, course_home, monkeypatch):
    monkeypatch.delenv("COURSE_DATA", raising=False)
    calls = serve(monkeypatch, CONTENT)
    path = data.fetch("fake", progress=False)
    assert path == course_home / "data" / "fake.txt" and path.read_bytes() == CONTENT
    assert data.fetch("fake", progress=False) == path
    assert len(calls) == 1  # the second fetch came from the cache


def test_corrupt_download_leaves_nothing_in_the_cache(fake_file, course_home, monkeypatch):
    monkeypatch.delenv("COURSE_DATA", raising=False)
    serve(monkeypatch, CONTENT[:-5] + b"XXXXX")
    with pytest.raises(data.ChecksumError, match="corrupt"):
        data.fetch("fake", progress=False)
    assert list((course_home / "data").iterdir()) == []


def test_damaged_cache_entry_is_downloaded_again(fake_file, course_home, monkeypatch):
    monkeypatch.delenv("COURSE_DATA", raising=False)
    (course_home / "data").mkdir(parents=True)
    (course_home / "data" / "fake.txt").write_bytes(CONTENT[:10])
    serve(monkeypatch, CONTENT)
    assert data.fetch("fake", progress=False).read_bytes() == CONTENT


def test_offline_error_names_file_url_and_place(fake_file, course_home, monkeypatch):
    monkeypatch.delenv("COURSE_DATA", raising=False)
    serve(monkeypatch, None)
    with pytest.raises(data.DataUnavailableError) as err:
        data.fetch("fake", progress=False)
    message = str(err.value)
    assert "fake.txt" in message and fake_file.url in message
    assert str(course_home / "data" / "fake.txt") in message and "COURSE_DATA" in message
    assert list((course_home / "data").iterdir()) == []


@pytest.mark.skipif(not has_data("tinyshakespeare"), reason="Tiny Shakespeare is not available offline")
def test_tiny_shakespeare_is_the_expected_text():
    text = data.load_text("tinyshakespeare")
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
    assert data.CharTokenizer.from_text(text).vocab_size == 65


def test_char_tokenizer_round_trip():
    tok = data.CharTokenizer.from_text("hello world")
    assert tok.chars == sorted(set("hello world"))
    assert tok.decode(tok.encode("low heel")) == "low heel"
    assert tok.decode(torch.tensor(tok.encode("old"))) == "old"


def test_char_tokenizer_bad_input():
    tok = data.CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("abz")
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([0, 7])
    with pytest.raises(ValueError, match="non-empty"):
        data.CharTokenizer.from_text("")


def test_split_is_by_position():
    tokens = torch.arange(100)
    train, val = data.train_val_split(tokens, 0.1)
    assert torch.equal(torch.cat([train, val]), tokens) and len(val) == 10
    with pytest.raises(ValueError):
        data.train_val_split(tokens, 1.5)


def test_get_batch_targets_are_inputs_shifted_by_one():
    tokens = torch.arange(1000)
    x, y = data.get_batch(tokens, block_size=8, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)


def test_get_batch_bad_input():
    with pytest.raises(TypeError, match="1-D tensor"):
        data.get_batch([1, 2, 3], 2, 1)
    with pytest.raises(ValueError, match="more than block_size"):
        data.get_batch(torch.arange(5), block_size=8, batch_size=1)


@pytest.mark.parametrize("tokens, kwargs, error, message", [
    (torch.arange(20.0), {}, TypeError, "integer token ids"),
    (torch.tensor([-1] * 20), {}, ValueError, "negative token ids"),
    (torch.arange(20), {"block_size": 0}, ValueError, "block_size"),
    (torch.arange(20), {"batch_size": 0}, ValueError, "batch_size"),
    (torch.arange(20).view(4, 5), {}, TypeError, "1-D tensor"),
])
def test_get_batch_names_bad_arguments(tokens, kwargs, error, message):
    kwargs = {"block_size": 4, "batch_size": 2, **kwargs}
    with pytest.raises(error, match=message):
        data.get_batch(tokens, **kwargs)


def test_char_decoder_takes_tensors_and_names_batches():
    tok = data.CharTokenizer(list("abc"))
    assert tok.decode(torch.tensor([0, 2])) == "ac" and tok.decode(np.array([1])) == "b"
    with pytest.raises(TypeError, match=r"decode\(out\[0\]\)"):
        tok.decode(torch.tensor([[0, 1]]))
    with pytest.raises(TypeError, match="encode needs a str"):
        tok.encode(["a"])
