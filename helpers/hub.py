"""Published weights in the course's own GPT: "an LLM is two files".

A model folder in the Hugging Face layout holds ``config.json`` (the architecture's sizes) and
``model.safetensors`` (every weight, by name). This module reads both and fills our ``GPT`` (``helpers.gpt``):

- ``read_safetensors``: the format from scratch (8 bytes giving the header's length, a JSON header naming each
  tensor's dtype, shape and byte range, then the raw bytes); no pickle, so nothing in the file can run;
- ``gpt2_weights`` / ``llama_weights``: their names and layouts -> our config and state dict. GPT-2 needs the tanh
  GELU and its Conv1D layers transposed; a LLaMA-architecture model (SmolLM2, TinyLlama, LLaMA) its RMSNorm epsilon,
  RoPE base, and grouped-query attention, which we load by repeating each key/value head for the query heads that
  share it (the same function, more memory);
- ``load_pretrained(folder)``: a ``GPT`` with the folder's weights, in eval mode;
- ``download(url, path, sha256=None)``: fetch a file once, with a progress bar, atomically, checked when a hash is
  given. ``GPT2_SMALL`` names the files of GPT-2 small.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import urllib.request
from pathlib import Path

import torch

from helpers.gpt import GPT, GPTConfig

GPT2_SMALL = {name: f"https://huggingface.co/openai-community/gpt2/resolve/main/{name}"
              for name in ("config.json", "model.safetensors")}
SMOLLM2_135M = {name: f"https://huggingface.co/HuggingFaceTB/SmolLM2-135M/resolve/main/{name}"
                for name in ("config.json", "model.safetensors")}
DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
MAX_HEADER = 100 * 2**20  # bytes; a real header is kilobytes


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a ``.safetensors`` file, by name (CPU tensors of the stored dtype)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no safetensors file at {path}")
    data = bytearray(path.read_bytes())  # one writable buffer; every tensor is a view of it (no copies)
    if len(data) < 8:
        raise ValueError(f"{path} is not a safetensors file: {len(data)} bytes, shorter than its 8-byte header size")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n > min(MAX_HEADER, len(data) - 8):
        raise ValueError(f"{path} is not a safetensors file (or is truncated): header of {n} bytes announced, "
                         f"{len(data) - 8} bytes follow")
    try:
        header = json.loads(bytes(data[8:8 + n]))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a safetensors file: its header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file: its header is not a JSON object")
    body_start, body_size, tensors = 8 + n, len(data) - 8 - n, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in DTYPES or not isinstance(info.get("shape"), list) \
                or len(info.get("data_offsets", ())) != 2:
            raise ValueError(f"{path}: tensor {name!r} is described as {info!r}; expected a dtype of "
                             f"{sorted(DTYPES)}, a shape and two data offsets")
        dtype, shape, (start, end) = DTYPES[info["dtype"]], info["shape"], info["data_offsets"]
        count = int(torch.tensor(shape, dtype=torch.long).prod())
        size = torch.tensor([], dtype=dtype).element_size() * count
        if not 0 <= start <= end <= body_size or end - start != size:
            raise ValueError(f"{path}: tensor {name!r} of shape {shape} ({info['dtype']}) needs {size} bytes, its "
                             f"byte range is [{start}, {end}) in a body of {body_size} bytes: the file is damaged")
        flat = torch.frombuffer(data, dtype=dtype, offset=body_start + start, count=count) if count else \
            torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(shape)
    return tensors


def _need(tensors: dict, name: str) -> torch.Tensor:
    if name not in tensors:
        raise KeyError(f"the weights have no tensor {name!r} (found e.g. {sorted(tensors)[:4]}): not the expected "
                       f"architecture")
    return tensors[name]


def gpt2_weights(tensors: dict[str, torch.Tensor], hf_config: dict, block_size: int | None = None
                 ) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    """(our config, our state dict) from GPT-2's tensors and config.json (with or without the ``transformer.``
    prefix that a saved ``GPT2LMHeadModel`` adds)."""
    t = {k.removeprefix("transformer."): v.float() for k, v in tensors.items()}
    if block_size is not None and not 0 < block_size <= hf_config["n_positions"]:
        raise ValueError(f"block_size must be between 1 and the model's {hf_config['n_positions']} learned "
                         f"positions (n_positions), got {block_size}")
    config = GPTConfig(vocab_size=hf_config["vocab_size"], block_size=block_size or hf_config["n_positions"],
                       n_layer=hf_config["n_layer"], n_head=hf_config["n_head"], n_embd=hf_config["n_embd"],
                       gelu_approximate="tanh" if hf_config.get("activation_function", "gelu_new") == "gelu_new"
                       else "none", norm_eps=hf_config.get("layer_norm_epsilon", 1e-5))
    sd = {"wte.weight": _need(t, "wte.weight"), "wpe.weight": _need(t, "wpe.weight")[:config.block_size],
          "ln_f.weight": _need(t, "ln_f.weight"), "ln_f.bias": _need(t, "ln_f.bias")}
    names = {"ln_1": "ln_1", "ln_2": "ln_2", "attn.c_attn": "attn.qkv", "attn.c_proj": "attn.proj",
             "mlp.c_fc": "mlp.up", "mlp.c_proj": "mlp.down"}
    for i in range(config.n_layer):
        for theirs, ours in names.items():
            weight = _need(t, f"h.{i}.{theirs}.weight")
            sd[f"blocks.{i}.{ours}.weight"] = weight if theirs.startswith("ln") else weight.T.contiguous()
            sd[f"blocks.{i}.{ours}.bias"] = _need(t, f"h.{i}.{theirs}.bias")
    sd["lm_head.weight"] = sd["wte.weight"]
    return config, sd


def llama_weights(tensors: dict[str, torch.Tensor], hf_config: dict, block_size: int | None = None
                  ) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    """(our config, our state dict) from a LLaMA-architecture model's tensors and config.json. Grouped-query
    attention (fewer key/value heads than query heads) is loaded by repeating each key/value head."""
    t = {k: v.float() for k, v in tensors.items()}
    heads, kv_heads = hf_config["num_attention_heads"], hf_config.get("num_key_value_heads") or \
        hf_config["num_attention_heads"]
    if heads % kv_heads:
        raise ValueError(f"num_attention_heads={heads} is not a multiple of num_key_value_heads={kv_heads}")
    rope = hf_config.get("rope_parameters") or hf_config.get("rope_scaling") or {}  # transformers 5 / 4 layouts
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ValueError(f"RoPE scaling {rope!r} is not supported: only plain RoPE")
    rope_base = float(hf_config.get("rope_theta") or rope.get("rope_theta") or 10000.0)
    if hf_config.get("head_dim", hf_config["hidden_size"] // heads) * heads != hf_config["hidden_size"]:
        raise ValueError(f"head_dim {hf_config['head_dim']} x {heads} heads != hidden_size {hf_config['hidden_size']}")
    tied = hf_config.get("tie_word_embeddings", False) or "lm_head.weight" not in t
    config = GPTConfig(vocab_size=hf_config["vocab_size"],
                       block_size=block_size or hf_config["max_position_embeddings"],
                       n_layer=hf_config["num_hidden_layers"], n_head=heads, n_embd=hf_config["hidden_size"],
                       norm="rmsnorm", mlp="swiglu", pos="rope", tie_weights=tied, bias=False,
                       mlp_hidden=hf_config["intermediate_size"], norm_eps=hf_config.get("rms_norm_eps", 1e-6),
                       rope_base=rope_base)
    head_dim = config.n_embd // heads

    def repeat_kv(w: torch.Tensor) -> torch.Tensor:  # (kv_heads * head_dim, C) -> (heads * head_dim, C)
        return w.view(kv_heads, head_dim, -1).repeat_interleave(heads // kv_heads, dim=0).reshape(-1, w.size(-1))

    sd = {"wte.weight": _need(t, "model.embed_tokens.weight"), "ln_f.weight": _need(t, "model.norm.weight")}
    sd["lm_head.weight"] = sd["wte.weight"] if tied else _need(t, "lm_head.weight")
    for i in range(config.n_layer):
        p = f"model.layers.{i}."
        sd[f"blocks.{i}.ln_1.weight"] = _need(t, p + "input_layernorm.weight")
        sd[f"blocks.{i}.ln_2.weight"] = _need(t, p + "post_attention_layernorm.weight")
        q, k, v = (_need(t, p + f"self_attn.{x}_proj.weight") for x in "qkv")
        sd[f"blocks.{i}.attn.qkv.weight"] = torch.cat([q, repeat_kv(k), repeat_kv(v)])
        sd[f"blocks.{i}.attn.proj.weight"] = _need(t, p + "self_attn.o_proj.weight")
        for theirs, ours in (("gate_proj", "gate"), ("up_proj", "up"), ("down_proj", "down")):
            sd[f"blocks.{i}.mlp.{ours}.weight"] = _need(t, p + f"mlp.{theirs}.weight")
    return config, sd


ARCHITECTURES = {"gpt2": gpt2_weights, "llama": llama_weights}


def load_pretrained(folder: str | Path, block_size: int | None = None) -> GPT:
    """Our ``GPT`` with the weights of a model folder (``config.json`` + ``model.safetensors``) of a GPT-2 or
    LLaMA-architecture model, in eval mode. ``block_size``: a shorter context than the model's maximum (saves the
    memory of long position tables)."""
    folder = Path(folder)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    for p in (config_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} is missing: a model folder needs config.json and model.safetensors "
                                    f"(e.g. hub.download each URL of hub.GPT2_SMALL into it)")
    hf_config = json.loads(config_path.read_text())
    kind = hf_config.get("model_type")
    if kind not in ARCHITECTURES:
        raise ValueError(f"{config_path}: model_type {kind!r} is not one we can load; expected one of "
                         f"{sorted(ARCHITECTURES)}")
    config, state_dict = ARCHITECTURES[kind](read_safetensors(weights_path), hf_config, block_size)
    model = GPT(config)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:  # shapes that config.json does not describe
        raise ValueError(f"{weights_path}: the weights do not fit the sizes in config.json: {err}") from None
    return model.eval()


def download(url: str, path: str | Path, sha256: str | None = None, progress: bool = True) -> Path:
    """``url`` saved at ``path`` (kept if already there), written to a temporary file and renamed when complete;
    with ``sha256``, a file whose hash differs is refused (and not kept)."""
    from tqdm.auto import tqdm

    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=path.name, disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, path)
    if sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256:
            path.unlink()
            raise ValueError(f"{path} has sha256 {digest}, expected {sha256}: removed; download it again")
    return path
