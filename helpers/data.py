"""Data for the course: a small registry of files, a verified fetch, and the first tokenizer.

``fetch(name)`` returns a local path for a registered file. It looks, in order, in

1. ``$COURSE_DATA/<file>`` (a folder you filled by hand, e.g. a USB stick in a classroom),
2. the cache ``$COURSE_HOME/data/<file>`` (``COURSE_HOME`` defaults to ``~/.cache/llm-course``),
3. the network: a download with a progress bar into the cache.

Every file is checked against its sha256 before it is used, and a download is written to a temporary
file and renamed only once verified, so the cache never holds half a file.

Also here: a character-level tokenizer, a split by position, and ``get_batch`` for next-token training.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class DataFile:
    filename: str  # name on disk, in $COURSE_DATA or the cache
    url: str  # where fetch downloads it from
    sha256: str  # hex digest the file must have
    size: int  # bytes, for the progress bar and a quick first check
    description: str  # one line for humans


REGISTRY: dict[str, DataFile] = {
    "tinyshakespeare": DataFile(
        filename="tinyshakespeare.txt",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1_115_394,
        description="Tiny Shakespeare: 40,000 lines of the plays, one plain-text file (char-rnn).",
    ),
    "r50k_base": DataFile(
        filename="r50k_base.tiktoken",
        url="https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
        sha256="306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
        size=835_554,
        description="GPT-2's byte-pair merge ranks in tiktoken's format (50,256 tokens + end-of-text).",
    ),
}


class DataUnavailableError(RuntimeError):
    """A registered file is neither on disk nor downloadable (usually: offline)."""


class ChecksumError(RuntimeError):
    """A file's contents do not match the sha256 in the registry."""


def home() -> Path:
    """The course's writable folder: ``$COURSE_HOME``, else ``~/.cache/llm-course``."""
    return Path(os.environ.get("COURSE_HOME") or Path.home() / ".cache" / "llm-course").expanduser()


def cache_dir() -> Path:
    return home() / "data"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name: str, *, progress: bool = True) -> Path:
    """Return a local, verified path to the registered file ``name`` (see the module docstring)."""
    if name not in REGISTRY:
        raise KeyError(f"No data file called {name!r}; the registry has: {', '.join(sorted(REGISTRY))}.")
    spec = REGISTRY[name]
    if os.environ.get("COURSE_DATA"):
        local = Path(os.environ["COURSE_DATA"]).expanduser() / spec.filename
        if local.exists():
            _verify(local, spec)
            return local
    cached = cache_dir() / spec.filename
    if cached.exists():
        if sha256_of(cached) == spec.sha256:
            return cached
        cached.unlink()  # a damaged cache entry is ours to replace
    return _download(spec, cached, progress=progress)


def _verify(path: Path, spec: DataFile) -> None:
    got = sha256_of(path)
    if got != spec.sha256:
        raise ChecksumError(
            f"{path} does not match the expected file {spec.filename}: sha256 {got}, expected {spec.sha256}. "
            f"Replace it with a fresh copy from {spec.url}."
        )


def _download(spec: DataFile, target: Path, *, progress: bool) -> Path:
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=30) as response:
            bar = tqdm(total=spec.size, unit="B", unit_scale=True, desc=spec.filename, disable=not progress)
            with bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
        if digest.hexdigest() != spec.sha256:
            raise ChecksumError(
                f"The download of {spec.filename} from {spec.url} is corrupt: sha256 {digest.hexdigest()}, "
                f"expected {spec.sha256}. Nothing was saved; try again later."
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as err:
        raise DataUnavailableError(
            f"Could not get {spec.filename}: downloading {spec.url} failed ({err}). If you are offline, "
            f"download that URL elsewhere and put the file at {target}, or put it in a folder and set "
            f"COURSE_DATA to that folder."
        ) from err
    finally:
        tmp.unlink(missing_ok=True)
    return target


def load_text(name: str = "tinyshakespeare") -> str:
    """The registered text file ``name``, decoded as UTF-8."""
    return fetch(name).read_text(encoding="utf-8")


class CharTokenizer:
    """Characters as tokens: the vocabulary is the sorted set of characters seen in a text."""

    def __init__(self, chars: list[str]):
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("CharTokenizer needs a list of distinct single characters.")
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}  # str -> int

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        if not isinstance(text, str) or not text:
            raise ValueError("CharTokenizer.from_text needs a non-empty string.")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; a character outside the vocabulary is a ValueError that lists it."""
        if not isinstance(text, str):
            raise TypeError(f"encode needs a str, got {type(text).__name__}")
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            raise ValueError(f"Characters not in the vocabulary: {unknown[:10]!r}. "
                             "Build the tokenizer from a text that contains them.")
        return [self.stoi[c] for c in text]

    def decode(self, ids) -> str:
        """Text from a list (or 1-D tensor / array) of ids."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if not isinstance(ids, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise TypeError("decode needs one sequence of integer ids (a list or a 1-D tensor); for a batch (B, T), "
                            "decode each row, e.g. decode(out[0]).")
        bad = [i for i in ids if not 0 <= i < len(self.chars)]
        if bad:
            raise ValueError(f"Token ids out of range 0..{len(self.chars) - 1}: {bad[:10]}")
        return "".join(self.chars[i] for i in ids)


def train_val_split(data: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a 1-D sequence by position: the first (1 - val_fraction) for training, the rest held out."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    n = int(len(data) * (1 - val_fraction))
    return data[:n], data[n:]


def get_batch(
    data: torch.Tensor,
    block_size: int,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of a 1-D token tensor: inputs x (B, T) and next-token targets y (B, T)."""
    if not isinstance(data, torch.Tensor) or data.dim() != 1:
        raise TypeError("get_batch needs a 1-D tensor of token ids, e.g. torch.tensor(tokenizer.encode(text)).")
    if data.dtype.is_floating_point or data.dtype == torch.bool:
        raise TypeError(f"get_batch needs integer token ids (dtype torch.long), got dtype {data.dtype}.")
    for name, value in (("block_size", block_size), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"get_batch: {name} must be a positive integer, got {value!r}")
    if len(data) <= block_size:
        raise ValueError(f"The data has {len(data)} tokens; it needs more than block_size={block_size}.")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i : i + block_size] for i in starts.tolist()])  # (B, T)
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in starts.tolist()])  # (B, T)
    if bool((x < 0).any()) or bool((y < 0).any()):
        raise ValueError("get_batch found negative token ids in the data; token ids start at 0 "
                         "(was the tensor built from a tokenizer's encode?)")
    return x.to(device), y.to(device)
