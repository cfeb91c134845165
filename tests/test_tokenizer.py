import json
import random

import numpy as np
import pytest
import tiktoken
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiktoken.load import load_tiktoken_bpe

from conftest import has_data
from helpers import bpe, data, tokenizer
from helpers.tokenizer import Tokenizer, encode_chunk, encode_chunk_naive

ADVERSARIAL = [
    "", " ", "a", "hello world", "Hello World!", "  leading and trailing  ", "tabs\tand\nnewlines\r\n\r\n",
    " " * 40 + "x", "\n" * 7, "x" + " " * 17, "\t \t \n  \u3000 \u00a0 end",
    "it's we're they've I'm you'll he'd IT'S WE'RE 's 't", "don't 's's ''s '' ' s",
    "emoji: 😀👍🏽👨‍👩‍👧‍👦🇵🇱 🤖!!", "combining: e\u0301 a\u0300\u0301\u0302 Z\u0351\u036b\u0343\u036a",
    "CJK: 日本語のテキスト、中文文本。한국어 텍스트", "mixed: Привет, мир! Zażółć gęślą jaźń. Ωμέγα",
    "numbers: 1 12 123 1234 12345 3.14159 1,000,000 2024-01-01 0x1F", "١٢٣ ४५६ ⅻ ½",
    "<|endoftext|", "<|endoftext|>>", "<|endoftext|>", "<|endo ftext|>", "<|pad|><|bos|>", "<||>",
    "\x00\x01\x7f control \u200b\u200d\ufeff zero-width", "\ufffd replacement \U0010fffd private",
    "lone surrogate \ud800 here", "pair \ud83d\ude00 as surrogates", "a" * 300, "ab" * 150 + "!" * 50,
]
# Single chunks that stress the merge loop: long runs, repeats, overlapping candidates, mixed scripts.
LONG_CHUNKS = [
    b"a" * 8_000, b"ab" * 4_000, b"aab" * 2_000, b"abc" * 1_500 + b"a" * 7, b"ba" * 999 + b"b", b" " * 3_000,
    bytes(random.Random(0).choices(b"ab", k=5_000)), bytes(random.Random(1).choices(range(256), k=5_000)),
    bytes(random.Random(2).choices(b"abcdefghijklmnopqrstuvwxyz", k=8_000)),
    ("日本語" * 500).encode(), ("Zażółć" * 400).encode(), ("😀" * 700).encode(),
]


@pytest.fixture(scope="module")
def shakespeare():
    if not has_data("tinyshakespeare"):
        pytest.skip("tinyshakespeare.txt is not available offline")
    return data.load_text()


@pytest.fixture(scope="module")
def trained(shakespeare):
    return bpe.train(shakespeare[:100_000], 600, "gpt4", [bpe.ENDOFTEXT, bpe.PAD])


@pytest.fixture(scope="module")
def runs():
    """A vocabulary with deep merges of a few letters: aa, aaaa, ..., ab, abab, ... (ties everywhere)."""
    rng = random.Random(0)
    text = " ".join("a" * rng.randint(1, 70) for _ in range(60)) + " " + " ".join(
        "".join(rng.choice("ab") for _ in range(rng.randint(1, 40))) for _ in range(200))
    return bpe.train(text + " ab" * 50 + " aab" * 30 + " 日本語 Zażółć 😀" * 5, 600)


@pytest.fixture(scope="module")
def r50k():
    if not has_data("r50k_base"):
        pytest.skip("r50k_base.tiktoken is not available offline")
    path = data.fetch("r50k_base")
    ours = Tokenizer.from_tiktoken_file(path, "gpt2", {bpe.ENDOFTEXT: 50256})
    theirs = tiktoken.Encoding(name="r50k_test", pat_str=tokenizer.GPT2_PATTERN,
                               mergeable_ranks=load_tiktoken_bpe(str(path)), special_tokens={bpe.ENDOFTEXT: 50256})
    return ours, theirs


def test_encode_chunk_known_answers():
    ranks = {bytes([b]): b for b in range(256)} | {b"aa": 256, b"ab": 257, b"aaab": 258, b"aaa": 259}
    assert encode_chunk(b"aaab", ranks) == [258]  # a whole token at once
    assert encode_chunk(b"aaaa", ranks) == [256, 256]  # "aa" at 0 first (leftmost tie), then "aa" at 2
    # aa|a|a|a|b -> aa|aa|a|b (256 at offset 2) -> aa|aa|ab (257 before aaa's 259) -> aa|aaab (258)
    assert encode_chunk(b"aaaaab", ranks) == [256, 258]
    assert encode_chunk(b"", ranks) == [] and encode_chunk(b"z", ranks) == [122]


@pytest.mark.parametrize("piece", LONG_CHUNKS, ids=lambda p: f"{p[:6]!r}x{len(p)}")
def test_encode_chunk_equals_tiktoken_on_long_chunks(runs, piece):
    assert encode_chunk(piece, runs.ranks) == runs.to_tiktoken()._encode_single_piece(piece)


@pytest.mark.parametrize("piece", [p[:600] for p in LONG_CHUNKS], ids=lambda p: f"{p[:6]!r}x{len(p)}")
def test_encode_chunk_equals_the_naive_rule(runs, piece):
    assert encode_chunk(piece, runs.ranks) == encode_chunk_naive(piece, runs.ranks)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(min_size=1, max_size=200).map(lambda b: bytes(x % 3 + 97 for x in b)),  # many ties
                 st.binary(min_size=1, max_size=200),
                 st.text(min_size=1, max_size=60).map(lambda s: s.encode("utf-8", "replace"))))
def test_encode_chunk_equals_naive_and_tiktoken_on_random_pieces(runs, piece):
    # (non-empty: a chunk never is, and tiktoken's single-piece encoder panics on b"")
    ids = encode_chunk(piece, runs.ranks)
    assert ids == encode_chunk_naive(piece, runs.ranks) == runs.to_tiktoken()._encode_single_piece(piece)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_round_trip_any_text(text):
    tok = bpe.train("the cat sat on the mat, and the dog ate it. 123 + 456", 280)
    ids = tok.encode(text)
    assert tok.decode(ids) == text and tok.decode_bytes(ids) == text.encode("utf-8")
    assert all(0 <= i < tok.vocab_size for i in ids)


def test_text_outside_training_data_falls_back_to_bytes():
    tok = bpe.train("hello hello hello", 260)
    text = "Привет 😀 日本"
    assert tok.encode(text) == list(text.encode("utf-8")) and tok.decode(tok.encode(text)) == text
    assert tok.encode("") == [] and tok.decode([]) == ""


def test_invalid_utf8_from_a_cut_character_is_kept_in_bytes_and_replaced_in_text():
    tok = bpe.train("abc", 256)
    ids = tok.encode("é")  # two bytes, two tokens
    assert tok.decode_bytes(ids[:1]) == b"\xc3" and tok.decode(ids[:1]) == "\ufffd"
    assert tok.decode(ids[:1], errors="backslashreplace") == "\\xc3"


@pytest.mark.parametrize("make_ids", [
    lambda: torch.tensor([104, 105]), lambda: np.array([104, 105]), lambda: (104, 105), lambda: iter([104, 105]),
    lambda: [np.int64(104), torch.tensor(105)], lambda: torch.tensor([104, 105], dtype=torch.int32),
], ids=["tensor", "numpy", "tuple", "iterator", "numpy and 0-d tensor items", "int32 tensor"])
def test_decode_accepts_tensors_arrays_and_iterables(make_ids):
    tok = bpe.train("hi", 256)
    assert tok.decode(make_ids()) == "hi" and tok.decode_bytes(make_ids()) == b"hi"


def test_digit_splitting():
    assert bpe.split("year 12345", "gpt4") == ["year", " ", "123", "45"]
    assert bpe.split("year 12345", "gpt4-digits") == ["year", " ", "1", "2", "3", "4", "5"]
    assert bpe.split("year 12345", "gpt2") == ["year", " 12345"]


def test_special_tokens_need_an_allow_list():
    tok = bpe.train("hello world " * 20, 270, special_tokens=[bpe.ENDOFTEXT, bpe.BOS, bpe.EOS, bpe.PAD])
    eot = tok.special_tokens[bpe.ENDOFTEXT]
    assert sorted(tok.special_tokens.values()) == [266, 267, 268, 269] and tok.vocab_size == 270
    with pytest.raises(ValueError, match="allowed_special"):
        tok.encode("hello<|endoftext|>world")
    ids = tok.encode("hello<|endoftext|>world", allowed_special={bpe.ENDOFTEXT})
    assert eot in ids and tok.decode(ids) == "hello<|endoftext|>world"
    plain = tok.encode("hello<|endoftext|>world", disallowed_special=())
    assert eot not in plain and tok.decode(plain) == "hello<|endoftext|>world"
    with pytest.raises(ValueError, match="<\\|pad\\|>"):
        tok.encode("<|pad|>", allowed_special={bpe.ENDOFTEXT})
    assert tok.encode("<|pad|><|bos|>", allowed_special="all") == [269, 267]
    assert tok.encode("<|pad|>", allowed_special=bpe.PAD) == [269]  # one name alone, not its characters
    with pytest.raises(ValueError, match="does not have"):
        tok.encode("x", allowed_special={"<|nope|>"})


def test_pad_builds_ids_and_mask():
    padded, mask = bpe.pad([[5, 6, 7], [8]], pad_id=0)
    assert padded == [[5, 6, 7], [8, 0, 0]] and mask == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="truncate"):
        bpe.pad([[1, 2, 3]], 0, length=2)


@pytest.mark.parametrize("call, message", [
    (lambda t: t.encode(b"abc"), "text must be a str, got bytes; decode the bytes first"),
    (lambda t: t.encode(["ab", "c"]), "text must be a str, got list; encode each text on its own"),
    (lambda t: t.encode_ordinary(torch.tensor([1])), "text must be a str, got Tensor"),
    (lambda t: t.encode("x", allowed_special=None), "allowed_special must be 'all'"),
    (lambda t: t.encode("x", disallowed_special=5), "disallowed_special must be 'all'"),
    (lambda t: t.decode([999]), "not in this tokenizer"),
    (lambda t: t.decode(torch.tensor([[104, 105]])), r"shape \(1, 2\) \(decode one sequence at a time, e.g. ids\[0\]"),
    (lambda t: t.decode(torch.tensor(104)), r"ids must be 1-D.*got shape \(\); for one id, pass \[ids.item\(\)\]"),
    (lambda t: t.decode(np.zeros((2, 3), dtype=int)), r"ids\[0\]"),
    (lambda t: t.decode(torch.tensor([104.0])), r"integer token ids, got 104.0 \(float\) at position 0"),
    (lambda t: t.decode([104, True]), r"got True \(bool\) at position 1"),
    (lambda t: t.decode("hi"), "got str; to turn text into ids, use encode"),
    (lambda t: t.decode(104), r"for one id 104, pass \[104\]"),
    (lambda t: t.decode_bytes(None), "got NoneType"),
    (lambda t: Tokenizer({b"a": 0}), "256"),
    (lambda t: Tokenizer({bytes([b]): b for b in range(256)}, special_tokens={"<x>": 3}), "clash"),
])
def test_bad_input_gives_clear_errors(call, message):
    tok = bpe.train("hi", 256)
    with pytest.raises((ValueError, TypeError), match=message):
        call(tok)


def test_save_and_load_round_trip(tmp_path, trained):
    path = trained.save(tmp_path / "tok.json")
    loaded = Tokenizer.load(path)
    text = "ROMEO: Wherefore art thou? <|endoftext|> 😀"
    assert loaded.encode(text, allowed_special="all") == trained.encode(text, allowed_special="all")
    assert loaded.ranks == trained.ranks and loaded.special_tokens == trained.special_tokens
    assert loaded.pattern == trained.pattern


@pytest.mark.parametrize("corrupt", [
    lambda s: "{ not json",
    lambda s: json.dumps({**s, "format": "something else"}),
    lambda s: json.dumps({k: v for k, v in s.items() if k != "tokens"}),
    lambda s: json.dumps({**s, "tokens": {**s["tokens"], "5": "!!notbase64"}}),
    lambda s: json.dumps({**s, "tokens": {**s["tokens"], "300": s["tokens"]["97"]}}),
    lambda s: json.dumps({**s, "tokens": {k: v for k, v in s["tokens"].items() if k != "10"}}),
    lambda s: json.dumps({**s, "special_tokens": {"<|pad|>": 97}}),
    lambda s: json.dumps({**s, "pattern": "(("}),
    lambda s: json.dumps([1, 2, 3]),
])
def test_a_corrupt_file_raises_a_clear_error(tmp_path, corrupt):
    tok = bpe.train("hello world", 260, special_tokens=[bpe.PAD])
    state = json.loads(tok.save(tmp_path / "ok.json").read_text())
    bad = tmp_path / "bad.json"
    bad.write_text(corrupt(state))
    with pytest.raises(ValueError, match="not a valid tokenizer file"):
        Tokenizer.load(bad)


def test_a_corrupt_tiktoken_file_names_the_line(tmp_path):
    path = tmp_path / "ranks.tiktoken"
    path.write_text("IQ== 0\nIg== 1\nthis is not a rank line\n")
    with pytest.raises(ValueError, match="line 3"):
        tokenizer.load_tiktoken_ranks(path)


def test_exported_tiktoken_gives_identical_ids(shakespeare, trained):
    enc = trained.to_tiktoken()
    assert enc.encode_ordinary(shakespeare) == trained.encode_ordinary(shakespeare)
    for text in ADVERSARIAL:
        assert enc.encode_ordinary(text) == trained.encode_ordinary(text), text
        assert enc.encode(text, allowed_special="all") == trained.encode(text, allowed_special="all"), text
        assert enc.decode(trained.encode_ordinary(text)) == trained.decode(trained.encode_ordinary(text))


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_exported_tiktoken_agrees_on_random_text(trained, text):
    assert trained.to_tiktoken().encode_ordinary(text) == trained.encode_ordinary(text)


def test_tiktoken_ranks_import_round_trips(tmp_path, trained):
    lines = [f"{__import__('base64').b64encode(t).decode()} {i}" for t, i in trained.ranks.items()]
    (tmp_path / "ours.tiktoken").write_text("\n".join(lines) + "\n")
    again = Tokenizer.from_tiktoken_file(tmp_path / "ours.tiktoken", trained.pattern)
    assert again.ranks == trained.ranks and load_tiktoken_bpe(str(tmp_path / "ours.tiktoken")) == trained.ranks


def test_r50k_identical_to_tiktoken_on_all_of_tiny_shakespeare(r50k, shakespeare):
    ours, theirs = r50k
    assert ours.encode_ordinary(shakespeare) == theirs.encode_ordinary(shakespeare)


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_r50k_identical_to_tiktoken_on_adversarial_text(r50k, text):
    ours, theirs = r50k
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)
    assert ours.encode(text, allowed_special="all") == theirs.encode(text, allowed_special="all")
    if "<|endoftext|>" in text:
        for tok in r50k:
            with pytest.raises(ValueError):
                tok.encode(text)
    ids = theirs.encode_ordinary(text)
    assert ours.decode_bytes(ids) == theirs.decode_bytes(ids) and ours.decode(ids) == theirs.decode(ids)


@pytest.mark.parametrize("piece", LONG_CHUNKS, ids=lambda p: f"{p[:6]!r}x{len(p)}")
def test_r50k_identical_to_tiktoken_on_long_chunks(r50k, piece):
    ours, theirs = r50k  # e.g. 8,000 letters with no space: one chunk, the case that used to take seconds
    text = piece.decode("utf-8", "replace")
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)
    assert encode_chunk(piece, ours.ranks) == theirs._encode_single_piece(piece)


def test_r50k_known_ids(r50k):
    ours, _ = r50k
    assert ours.encode("hello world") == [31373, 995]
    assert ours.encode("<|endoftext|>", allowed_special="all") == [50256] and ours.vocab_size == 50257
