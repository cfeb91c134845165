"""Cleaning a web crawl: HTML stripping, exact and near deduplication, quality heuristics, a perplexity filter.

Every step takes a list of ``miniweb.Document`` and returns a ``Step``: the documents it kept, the ones it
removed, and a reason for each removal, so the notebook can measure each step's precision and recall against
the truth labels. ``pipeline`` runs them in the order real pipelines use (cheap and certain first):

1. ``strip_html``: the text of an HTML page without menus, cookie banners and footers (stdlib ``html.parser``).
2. ``exact_dedup``: keep the first page of each sha256 of the normalised text.
3. ``near_dedup``: MinHash (Broder, 1997) and locality-sensitive hashing (``helpers.minhash``): pages whose
   estimated Jaccard similarity of word 5-gram sets reaches a threshold, among LSH's candidate pairs.
4. ``heuristic_filter``: rules on simple signals of the Gopher (Rae et al., 2021) and C4 (Raffel et al., 2020)
   kind: repetition, share of stop words, symbols, share of non-Latin letters, share of vowels.
5. ``perplexity_filter``: CCNet's idea (Wenzek et al., 2019): score each page with a language model trained
   on trusted text and drop the pages it finds too surprising. Here the model is notebook 01's character
   Kneser-Ney n-gram, and the score is bits per character.

Simplifications: one pass in memory over a small crawl (no sharding, no Bloom filters); word shingles of the
normalised text; the MinHash "permutations" are universal hashes (a h + b) mod (2^61 - 1) of a sha1 of each
shingle; near duplicates are removed greedily in crawl order (no clustering); the heuristics' limits are set
for the mini-web (real pipelines tune them on their data); the perplexity filter scores the first
``max_chars`` characters of each page (lower-cased), which is enough to tell English from noise and keeps
scoring a crawl to seconds; HTML whitespace collapses as in a browser (two spaces in a line become one).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser

import numpy as np

from helpers import ngram
from helpers.minhash import estimate_jaccard, lsh_bands, lsh_candidates, minhash_signatures, normalise, shingles
from helpers.miniweb import Document

BOILERPLATE_TAGS = ("script", "style", "nav", "header", "footer", "head", "aside", "noscript")
BOILERPLATE_CLASSES = ("cookie", "banner", "menu", "nav", "footer", "sidebar", "advert", "popup", "share")
BLOCK_TAGS = ("p", "div", "main", "section", "article", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol",
              "table", "tr", "blockquote", "pre", "body")
STOP_WORDS = frozenset("the a an and or but of to in on at by for with from is are was were be been it its this "
                       "that these those he she they we you i his her their our your not no as so if then than "
                       "what who where when how which there here do does did has have had will would can could "
                       "shall should may might must my me him them us thy thou thee".split())
BOUNDARY = "\x00"  # marks a block boundary while parsing HTML (becomes one blank line)
SYMBOLS = set("#|\\{}[]@^~`_$")  # markup and keyboard noise; not + - * = < > ? (arithmetic uses them)


@dataclass
class Step:
    """What one cleaning step did to a crawl."""

    name: str  # the step's name, for tables
    kept: list  # Documents that pass, in crawl order
    removed: list  # Documents taken out, in crawl order
    reasons: list[str] = field(default_factory=list)  # reasons[i]: why removed[i] was taken out


def check_docs(docs: Sequence[Document]) -> list[Document]:
    """``docs`` as a list, after checking it is a non-empty sequence of ``miniweb.Document``."""
    if isinstance(docs, (str, bytes)) or not isinstance(docs, Sequence):
        raise TypeError(f"docs must be a list of miniweb.Document, got {type(docs).__name__}")
    if len(docs) == 0:
        raise ValueError("docs is empty: a cleaning step needs at least one document")
    for i, doc in enumerate(docs):
        if not isinstance(doc, Document):
            raise TypeError(f"docs[{i}] must be a miniweb.Document, got {type(doc).__name__}")
    return list(docs)


def _split(name: str, docs: list[Document], reasons: list[str | None]) -> Step:
    """A Step from one reason per document (None: kept)."""
    removed = [(doc, why) for doc, why in zip(docs, reasons) if why is not None]
    return Step(name, [doc for doc, why in zip(docs, reasons) if why is None],
                [doc for doc, _ in removed], [why for _, why in removed])


# --- 1. HTML ------------------------------------------------------------------------------------------------

class _TextExtractor(HTMLParser):
    """Collects the text of a page outside boilerplate elements: ``BOUNDARY`` where a block starts or ends,
    a newline for <br>."""

    VOID = ("br", "img", "hr", "meta", "link", "input", "wbr", "source")  # elements without an end tag

    def __init__(self):
        super().__init__(convert_charrefs=True)  # entities such as &amp; arrive unescaped
        self.parts: list[str] = []
        self.skip: list[str] = []  # open tags of the boilerplate element we are inside (empty: keep text)

    def handle_starttag(self, tag, attrs):
        if self.skip:
            if tag not in self.VOID:
                self.skip.append(tag)
            return
        labels = " ".join(value or "" for name, value in attrs if name in ("class", "id")).lower()
        if tag in BOILERPLATE_TAGS or any(word in labels for word in BOILERPLATE_CLASSES):
            if tag not in self.VOID:
                self.skip.append(tag)
        elif tag == "br":
            self.parts.append("\n")
        elif tag in BLOCK_TAGS:
            self.parts.append(BOUNDARY)

    def handle_endtag(self, tag):
        if self.skip:
            if tag in self.skip:  # close up to the matching tag (forgives unclosed children)
                del self.skip[len(self.skip) - 1 - self.skip[::-1].index(tag):]
        elif tag in BLOCK_TAGS:
            self.parts.append(BOUNDARY)

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))  # source newlines are not line breaks in HTML


def html_to_text(html: str) -> str:
    """The visible content of an HTML page: paragraphs separated by a blank line, <br> as a line break."""
    if not isinstance(html, str):
        raise TypeError(f"html must be a string, got {type(html).__name__}")
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = re.sub(f" *{BOUNDARY}[{BOUNDARY} ]*", "\n\n", "".join(parser.parts))  # boundaries in a row: one
    return "\n".join(" ".join(line.split()) for line in text.split("\n")).strip("\n")


def is_html(text: str) -> bool:
    return text.lstrip()[:14].lower().startswith(("<html", "<!doctype"))


def strip_html(docs: Sequence[Document]) -> Step:
    """HTML pages become their text (new Documents, same id, kind and truth); pages left empty are removed."""
    docs = check_docs(docs)
    docs = [replace(doc, text=html_to_text(doc.text)) if is_html(doc.text) else doc for doc in docs]
    return _split("strip_html", docs, [None if doc.text.strip() else "no text left" for doc in docs])


# --- 2. exact duplicates ------------------------------------------------------------------------------------

def exact_dedup(docs: Sequence[Document]) -> Step:
    """Keep the first document of each sha256(normalise(text))."""
    first: dict[str, int] = {}  # digest -> id of the first document with it
    reasons = []
    for doc in check_docs(docs):
        digest = hashlib.sha256(normalise(doc.text).encode()).hexdigest()
        reasons.append(f"duplicate of {first[digest]}" if digest in first else None)
        first.setdefault(digest, doc.id)
    return _split("exact_dedup", list(docs), reasons)


# --- 3. near duplicates: MinHash and LSH (helpers.minhash) --------------------------------------------------

def near_dedup(docs: Sequence[Document], threshold: float = 0.5, k: int = 5, num_perm: int = 128,
               bands: int | None = None, rows: int | None = None, seed: int = 0) -> Step:
    """Remove a page when LSH makes it a candidate with an earlier kept page and the MinHash estimate of their
    Jaccard similarity is >= ``threshold``. Greedy in crawl order: a page is compared only with pages kept so
    far, so in a chain A ~ B ~ C with A and C dissimilar, A and C stay.

    The default threshold 0.5 suits short pages: changing 3 words of a 40-word page changes up to 15 of its
    36 word 5-grams, J = 21 / 51 ~ 0.41 at worst. ``bands`` and ``rows`` default to ``lsh_bands``."""
    docs = check_docs(docs)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if (bands is None) != (rows is None):
        raise ValueError(f"give both bands and rows or neither, got bands={bands!r}, rows={rows!r}")
    bands, rows = lsh_bands(threshold, num_perm) if bands is None else (bands, rows)
    signatures = minhash_signatures([shingles(doc.text, k) for doc in docs], num_perm, seed)  # (N, num_perm)
    partners: dict[int, list[int]] = {}  # j -> earlier candidates i
    for i, j in lsh_candidates(signatures, bands, rows):
        partners.setdefault(j, []).append(i)
    reasons: list[str | None] = []
    for j, sig in enumerate(signatures):
        match = min((i for i in partners.get(j, []) if reasons[i] is None
                     and estimate_jaccard(signatures[i], sig) >= threshold), default=None)
        reasons.append(None if match is None else f"near duplicate of {docs[match].id}")
    return _split("near_dedup", docs, reasons)


# --- 4. heuristic quality rules -----------------------------------------------------------------------------

def quality_signals(text: str) -> dict[str, float]:
    """Simple statistics of a page that separate prose from spam, noise and other scripts. Its "words" for
    repetition, stop words and lengths are runs of two or more letters, so 'Q: 3+5 A: 8' has none."""
    words = re.findall(r"[^\W\d_]{2,}", text.lower())  # letter runs, any script
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    trigrams = list(zip(words, words[1:], words[2:]))
    letters = len(re.findall(r"[^\W\d_]", text))
    ascii_letters = len(re.findall(r"[A-Za-z]", text))
    stop = sum(word in STOP_WORDS for word in words)
    return {
        "word_count": len(text.split()),  # whitespace-separated tokens
        "alpha_words": len(words),
        "mean_word_length": sum(map(len, words)) / len(words) if words else 0.0,
        "symbol_ratio": sum(text.count(c) for c in SYMBOLS) / max(len(text.split()), 1),
        "duplicate_line_share": 1 - len(set(lines)) / len(lines) if lines else 0.0,
        "distinct_word_share": len(set(words)) / len(words) if words else 1.0,
        "repeated_trigram_share": 1 - len(set(trigrams)) / len(trigrams) if trigrams else 0.0,
        "stop_words": stop,
        "stop_word_share": stop / len(words) if words else 0.0,
        "non_ascii_letter_share": 1 - ascii_letters / letters if letters else 0.0,
        "vowel_share": len(re.findall(r"[aeiouyAEIOUY]", text)) / ascii_letters if ascii_letters else 0.0,
    }


@dataclass(frozen=True)
class Rule:
    """Remove a page when ``signal`` is below ``below`` or above ``above`` (checked on pages with at least
    ``min_words`` words with letters)."""

    name: str  # shown as the reason of a removal
    signal: str  # a key of quality_signals
    below: float = -math.inf  # remove when the signal is smaller than this
    above: float = math.inf  # remove when the signal is larger than this
    min_words: int = 0  # apply only to pages with at least this many alpha_words

    def fires(self, signals: dict[str, float]) -> bool:
        if self.signal not in signals:
            raise ValueError(f"rule {self.name!r} reads unknown signal {self.signal!r}; expected one of "
                             f"{sorted(signals)}")
        value = signals[self.signal]
        return signals["alpha_words"] >= self.min_words and (value < self.below or value > self.above)


DEFAULT_RULES = (
    Rule("other script", "non_ascii_letter_share", above=0.3),
    Rule("repeated words", "distinct_word_share", below=0.2, min_words=30),
    Rule("repeated lines", "duplicate_line_share", above=0.6, min_words=10),
    Rule("markup symbols", "symbol_ratio", above=0.1),
    Rule("no stop words", "stop_word_share", below=0.08, min_words=20),
    Rule("too few vowels", "vowel_share", below=0.25, min_words=20),
)


def heuristic_filter(docs: Sequence[Document], rules: Sequence[Rule] = DEFAULT_RULES) -> Step:
    """Remove the pages on which some rule fires; the reason is the first such rule's name."""
    docs = check_docs(docs)
    reasons = []
    for doc in docs:
        signals = quality_signals(doc.text)
        reasons.append(next((rule.name for rule in rules if rule.fires(signals)), None))
    return _split("heuristic_filter", docs, reasons)


# --- 5. perplexity filter -----------------------------------------------------------------------------------

def model_text(text: str) -> str:
    """What the character model reads: lower case, whitespace runs as one space."""
    return " ".join(text.lower().split())


def reference_model(texts: Sequence[str], n: int = 5) -> ngram.CountLM:
    """A Kneser-Ney character n-gram model of trusted ``texts`` (joined by spaces), with an unknown token."""
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings (the trusted reference pages)")
    chars = list(" ".join(model_text(t) for t in texts))
    return ngram.CountLM(ngram.count(chars, n, sorted(set(chars)) + [ngram.UNK]), n, "kneser-ney")


def bits_per_char(model: ngram.CountLM, text: str, max_chars: int = 400, cache: dict | None = None) -> float:
    """Mean -log2 p(c_t | previous n - 1 characters) over the first ``max_chars`` characters of
    ``model_text(text)``; characters the model never saw count as its unknown token. ``cache`` (n-gram ->
    -log2 p) may be shared between calls: most n-grams of a crawl repeat."""
    chars = [c if c in model.counts.index else ngram.UNK for c in model_text(text)[:max_chars]]
    if not chars:
        raise ValueError("text has no characters to score")
    cache = {} if cache is None else cache
    total = 0.0
    for t in range(len(chars)):
        key = tuple(chars[max(0, t - model.n + 1):t + 1])
        if key not in cache:
            cache[key] = -math.log2(model.prob(key[:-1], key[-1]))
        total += cache[key]
    return total / len(chars)


def perplexity_threshold(model: ngram.CountLM, reference_texts: Sequence[str], quantile: float = 0.99,
                         margin: float = 0.0, max_chars: int = 400) -> float:
    """The ``quantile`` of the bits per character of clean held-out pages, plus ``margin`` bits."""
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
    cache: dict = {}
    scores = [bits_per_char(model, text, max_chars, cache) for text in reference_texts]
    return float(np.quantile(scores, quantile)) + margin


def perplexity_filter(docs: Sequence[Document], model: ngram.CountLM, threshold: float,
                      max_chars: int = 400) -> Step:
    """Remove the pages whose bits per character under ``model`` exceed ``threshold``."""
    docs, cache = check_docs(docs), {}
    scores = [bits_per_char(model, doc.text, max_chars, cache) for doc in docs]
    return _split("perplexity_filter", docs,
                  [f"{s:.2f} bits/char > {threshold:.2f}" if s > threshold else None for s in scores])


# --- measuring and running ----------------------------------------------------------------------------------

def precision_recall(step: Step, is_target: Callable[[Document], bool]) -> tuple[float, float]:
    """Precision: the share of removed pages that are targets; recall: the share of targets removed
    (targets counted among the step's input, kept + removed). NaN where the share is 0 / 0."""
    hits = sum(bool(is_target(doc)) for doc in step.removed)
    targets = hits + sum(bool(is_target(doc)) for doc in step.kept)
    return (hits / len(step.removed) if step.removed else math.nan, hits / targets if targets else math.nan)


def pipeline(docs: Sequence[Document], quality_model: ngram.CountLM, threshold: float,
             rules: Sequence[Rule] = DEFAULT_RULES, near_threshold: float = 0.5, seed: int = 0) -> list[Step]:
    """All five steps in order, each on what the previous one kept; the last step's ``kept`` is the clean web."""
    steps = [strip_html(docs)]
    steps.append(exact_dedup(steps[-1].kept))
    steps.append(near_dedup(steps[-1].kept, threshold=near_threshold, seed=seed))
    steps.append(heuristic_filter(steps[-1].kept, rules))
    steps.append(perplexity_filter(steps[-1].kept, quality_model, threshold))
    return steps
