"""Speed of helpers.bpe and helpers.tokenizer: naive vs fast trainer, encoding throughput against tiktoken,
and one long chunk (8,000 letters with no space: a URL, base64 or DNA string) with the quadratic merge loop
(``encode_chunk_naive``, the encoder before the heap) and the O(n log n) one (``encode_chunk``).

    python benchmarks/bpe_speed.py                 # full Tiny Shakespeare (the naive trainer takes minutes)
    python benchmarks/bpe_speed.py --chars 100000  # a quicker run on the first 100,000 characters

Prints one table. Times are wall-clock seconds on this machine, as it is loaded now: one run each for the
trainers, first calls and the quadratic loop, the best of 3 for the rest.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time

import tiktoken
from tiktoken.load import load_tiktoken_bpe

from helpers import bpe, data
from helpers.tokenizer import GPT2_PATTERN, Tokenizer, encode_chunk, encode_chunk_naive


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def best_of(repeats: int, fn, *args):
    return min(timed(fn, *args)[1] for _ in range(repeats))


def long_chunk_rows(name: str, tok: Tokenizer, enc: tiktoken.Encoding, length: int) -> list[tuple[str, float, str]]:
    """One chunk of ``length`` random lowercase letters: the quadratic loop, the heap, and tiktoken."""
    text = "".join(random.Random(0).choices("abcdefghijklmnopqrstuvwxyz", k=length))
    piece = text.encode("utf-8")
    before, before_s = timed(encode_chunk_naive, piece, tok.ranks)  # seconds: one run is enough
    after, after_s = encode_chunk(piece, tok.ranks), best_of(3, encode_chunk, piece, tok.ranks)
    theirs, theirs_s = enc.encode_ordinary(text), best_of(3, enc.encode_ordinary, text)
    same = before == after == theirs
    return [(f"{length:,} letters, one chunk, ours before ({name})", before_s, f"{len(before):,} tokens"),
            (f"{length:,} letters, one chunk, ours now ({name})", after_s, f"{before_s / after_s:.0f}x faster"),
            (f"{length:,} letters, one chunk, tiktoken ({name})", theirs_s, f"identical ids: {same}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=None, help="use only the first N characters of the text")
    parser.add_argument("--vocab", type=int, default=512, help="vocabulary size for naive vs fast (default 512)")
    parser.add_argument("--big-vocab", type=int, default=4096, help="vocabulary size for the fast trainer alone")
    parser.add_argument("--pattern", default="gpt4", help="pre-tokenization pattern (gpt2, gpt4, gpt4-digits)")
    parser.add_argument("--long", type=int, default=8_000, help="letters in the one long chunk (default 8000)")
    args = parser.parse_args()

    text = data.load_text()[: args.chars]
    megabytes = len(text.encode("utf-8")) / 1e6
    chunks = [chunk.encode("utf-8") for chunk in bpe.split(text, args.pattern)]
    rows = []  # (what, seconds, note)

    (naive_merges, _), naive_s = timed(bpe.train_naive, chunks, args.vocab, progress=True)
    (fast_merges, _), fast_s = timed(bpe.train_fast, chunks, args.vocab)
    same = list(naive_merges.items()) == list(fast_merges.items())
    rows.append((f"train naive, vocab {args.vocab}", naive_s, f"{len(naive_merges)} merges"))
    rows.append((f"train fast, vocab {args.vocab}", fast_s, f"{naive_s / fast_s:.0f}x faster; "
                 f"identical merges: {same}"))
    (_, big_vocab), big_s = timed(bpe.train_fast, chunks, args.big_vocab)
    rows.append((f"train fast, vocab {args.big_vocab}", big_s, f"{len(big_vocab)} tokens"))

    tok = Tokenizer({token: i for i, token in enumerate(big_vocab)}, args.pattern)
    ids, cold_s = timed(tok.encode_ordinary, text)  # a fresh tokenizer: every distinct chunk merged once
    warm_s = best_of(3, tok.encode_ordinary, text)  # chunks cached
    enc = tok.to_tiktoken()
    tiktoken_s = best_of(3, enc.encode_ordinary, text)
    rows.append((f"encode, ours (vocab {args.big_vocab}, first call)", cold_s, f"{megabytes / cold_s:.2f} MB/s"))
    rows.append((f"encode, ours (vocab {args.big_vocab}, cached chunks)", warm_s, f"{megabytes / warm_s:.2f} MB/s"))
    rows.append((f"encode, tiktoken (vocab {args.big_vocab}, same ranks)", tiktoken_s,
                 f"{megabytes / tiktoken_s:.2f} MB/s; identical ids: {enc.encode_ordinary(text) == ids}"))
    rows += long_chunk_rows(f"vocab {args.big_vocab}", tok, enc, args.long)

    try:
        path = data.fetch("r50k_base", progress=False)
    except data.DataUnavailableError:
        path = None
    if path is not None:
        gpt2 = Tokenizer.from_tiktoken_file(path, "gpt2", {bpe.ENDOFTEXT: 50256})
        reference = tiktoken.Encoding(name="r50k_base", pat_str=GPT2_PATTERN,
                                      mergeable_ranks=load_tiktoken_bpe(str(path)), special_tokens=gpt2.special_tokens)
        gpt2_ids, gpt2_s = timed(gpt2.encode_ordinary, text)
        reference_s = best_of(3, reference.encode_ordinary, text)
        rows.append(("encode, ours (r50k_base, first call)", gpt2_s, f"{megabytes / gpt2_s:.2f} MB/s"))
        rows.append(("encode, tiktoken (r50k_base)", reference_s, f"{megabytes / reference_s:.2f} MB/s; "
                     f"identical ids: {reference.encode_ordinary(text) == gpt2_ids}"))
        rows += long_chunk_rows("r50k_base", gpt2, reference, args.long)

    print(f"\nTiny Shakespeare, {len(text):,} characters ({megabytes:.2f} MB), {len(chunks):,} chunks, "
          f"pattern {args.pattern!r}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, tiktoken {tiktoken.__version__}\n")
    print(f"| {'what':<52} | {'seconds':>9} | note")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 40}")
    for what, seconds, note in rows:
        print(f"| {what:<52} | {seconds:>9.4f} | {note}")


if __name__ == "__main__":
    main()
