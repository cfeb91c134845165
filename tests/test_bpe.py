import json

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st
from tiktoken.load import load_tiktoken_bpe

from conftest import has_data
from helpers import bpe, data

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


@pytest.fixture(scope="module")
def shakespeare():
    if not has_data("tinyshakespeare"):
        pytest.skip("tinyshakespeare.txt is not available offline")
    return data.load_text()


@pytest.fixture(scope="module")
def trained(shakespeare):
    return bpe.train(shakespeare[:100_000], 600, "gpt4", [bpe.ENDOFTEXT, bpe.PAD])


@pytest.fixture(scope="module")
def r50k():
    if not has_data("r50k_base"):
        pytest.skip("r50k_base.tiktoken is not available offline")
    path = data.fetch("r50k_base")
    ours = bpe.Tokenizer.from_tiktoken_file(path, "gpt2", {bpe.ENDOFTEXT: 50256})
    theirs = tiktoken.Encoding(name="r50k_test", pat_str=bpe.GPT2_PATTERN, mergeable_ranks=load_tiktoken_bpe(str(path)),
                               special_tokens={bpe.ENDOFTEXT: 50256})
    return ours, theirs


def test_get_stats_and_merge_known_answers():
    assert bpe.get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert bpe.get_stats([5]) == {} and bpe.get_stats([1, 1, 1], {(1, 1): 3}, weight=2) == {(1, 1): 7}
    assert bpe.merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert bpe.merge([7, 7, 7], (7, 7), 9) == [9, 7]  # left to right, no overlaps
    assert bpe.merge([], (1, 2), 3) == []


@pytest.mark.parametrize("trainer", [bpe.train_naive, bpe.train_fast])
def test_wikipedia_example(trainer):
    # "aaabdaaabac": Z=aa, then Y=ab, then X=ZY, which leaves "XdXac" (ties go to the smallest pair).
    merges, vocab = trainer([b"aaabdaaabac"], 259)
    assert merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert vocab[256:] == [b"aa", b"ab", b"aaab"]
    tok = bpe.train("aaabdaaabac", 259)
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert bpe.apply_merges(list(b"aaabdaaabac"), merges) == [258, 100, 258, 97, 99]


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4", "gpt4-digits"])
def test_naive_and_fast_trainers_learn_identical_merges(shakespeare, pattern):
    chunks = [c.encode() for c in bpe.split(shakespeare[:8_000] + " 12345 67 8901", pattern)]
    naive, fast = bpe.train_naive(chunks, 330), bpe.train_fast(chunks, 330)
    assert list(naive[0].items()) == list(fast[0].items()) and naive[1] == fast[1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=30), st.integers(256, 300))
def test_naive_equals_fast_on_random_chunks(chunks, vocab_size):
    chunks = [bytes(b % 4 + 97 for b in c) for c in chunks]  # a small alphabet: many repeats and ties
    naive, fast = bpe.train_naive(chunks, vocab_size), bpe.train_fast(chunks, vocab_size)
    assert list(naive[0].items()) == list(fast[0].items())


def test_training_stops_when_nothing_is_left_to_merge():
    tok = bpe.train("abab", 300)
    assert tok.vocab_size == 258 and tok.encode("abab") == [257]  # "ab", then "abab": no pair left


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


def test_train_steps_show_each_merge():
    steps = bpe.train_steps("aaabdaaabac", 3)
    assert [s.pair for s in steps] == [None, (b"a", b"a"), (b"a", b"b"), (b"aa", b"ab")]
    assert b"".join(steps[-1].pieces) == b"aaabdaaabac" and len(steps[-1].pieces) == 5


@pytest.mark.parametrize("call, message", [
    (lambda: bpe.train("abc", 255), "at least 256"),
    (lambda: bpe.train("abc", 257, special_tokens=["<a>", "<b>"]), "258"),
    (lambda: bpe.train(b"abc", 300), "needs a str"),
    (lambda: bpe.train("abc", 300, pattern="(unclosed"), "valid regex"),
    (lambda: bpe.train("abc", 300, trainer="magic"), "trainer"),
    (lambda: bpe.train("abc", 256).encode(b"abc"), "needs a str"),
    (lambda: bpe.train("abc", 256).decode([999]), "not in this tokenizer"),
    (lambda: bpe.Tokenizer({b"a": 0}), "256"),
    (lambda: bpe.Tokenizer({bytes([b]): b for b in range(256)}, special_tokens={"<x>": 3}), "clash"),
])
def test_bad_input_gives_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_save_and_load_round_trip(tmp_path, trained):
    path = trained.save(tmp_path / "tok.json")
    loaded = bpe.Tokenizer.load(path)
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
        bpe.Tokenizer.load(bad)


def test_a_corrupt_tiktoken_file_names_the_line(tmp_path):
    path = tmp_path / "ranks.tiktoken"
    path.write_text("IQ== 0\nIg== 1\nthis is not a rank line\n")
    with pytest.raises(ValueError, match="line 3"):
        bpe.load_tiktoken_ranks(path)


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
    again = bpe.Tokenizer.from_tiktoken_file(tmp_path / "ours.tiktoken", trained.pattern)
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


def test_r50k_known_ids(r50k):
    ours, _ = r50k
    assert ours.encode("hello world") == [31373, 995]
    assert ours.encode("<|endoftext|>", allowed_special="all") == [50256] and ours.vocab_size == 50257
