import html

import torch

from helpers import data, sampling, widgets
from helpers.gpt import GPT, GPTConfig


def shown_text(out):
    return html.unescape(out.value.split(">", 1)[1].rsplit("</pre>", 1)[0])


def test_sampler_redraws_when_a_control_changes():
    tok = data.CharTokenizer.from_text("abcdefgh ")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    box = widgets.sampler(model, tok.encode, tok.decode, prompt="abc", max_new_tokens=20)
    prompt_box, length = box.children[0].children
    temperature, _ = box.children[1].children
    out = box.children[2]
    first = shown_text(out)
    assert first.startswith("abc") and len(first) == 23
    temperature.value = 0.0  # greedy: the widget must now show the arg-max continuation
    greedy = sampling.generate(model, torch.tensor([tok.encode("abc")]), 20, temperature=0.0)
    assert shown_text(out) == tok.decode(greedy[0].tolist())
    prompt_box.value = "xyz"  # characters the tokenizer never saw
    assert "Cannot encode" in out.value
