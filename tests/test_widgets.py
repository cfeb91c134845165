import html

import pytest
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
    temperature, _, _ = box.children[1].children
    out = box.children[2]
    first = shown_text(out)
    assert first.startswith("abc") and len(first) == 23
    temperature.value = 0.0  # greedy: the widget must now show the arg-max continuation
    greedy = sampling.generate(model, torch.tensor([tok.encode("abc")]), 20, temperature=0.0)
    assert shown_text(out) == tok.decode(greedy[0].tolist())
    prompt_box.value = "xyz"  # characters the tokenizer never saw
    assert "Cannot encode" in out.value


def test_sampler_top_k_and_top_p_sliders_reach_generate():
    tok = data.CharTokenizer.from_text("abcdefgh ")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    box = widgets.sampler(model, tok.encode, tok.decode, prompt="abc", max_new_tokens=20, seed=3)
    temperature, top_k, top_p = box.children[1].children
    out = box.children[2]
    prompt = torch.tensor([tok.encode("abc")])

    def expected(**knobs):
        ids = sampling.generate(model, prompt, 20, generator=torch.Generator().manual_seed(3), **knobs)
        return tok.decode(ids[0].tolist())

    assert shown_text(out) == expected() != expected(temperature=0.0)  # top-k 0 and top-p 1 cut nothing
    top_p.value = 0.05  # only the most likely token is left: the same text as greedy decoding
    assert shown_text(out) == expected(top_p=0.05) == expected(temperature=0.0)
    top_p.value, top_k.value = 1.0, 2
    assert shown_text(out) == expected(top_k=2) != expected()
    assert all(s.style.description_width == "initial" for s in (temperature, top_k, top_p))  # labels not cut


def test_token_html_colours_each_token_and_escapes_text():
    out = widgets.token_html([b"<a>", b" b", b"\xc3"], ids=[1, 2, 3])
    assert out.count("<span") == 3 and "&lt;a&gt;" in out and "id 3" in out and "\ufffd" in out


def test_tokenizer_playground_redraws_for_new_text_and_tokenizer():
    from helpers import bpe

    small, big = bpe.train("hello hello", 257), bpe.train("hello hello", 262)
    box = widgets.tokenizer_playground({"small": small, "big": big}, text="hello")
    choice, textbox, out = box.children[0].children[0], box.children[1], box.children[2]
    assert "<b>4 tokens</b>" in out.value  # h, el, l, o: the one merge made 'el'
    choice.value = "big"
    assert "<b>1 tokens</b>" in out.value
    textbox.value = ""
    assert "<b>0 tokens</b>" in out.value


def test_merge_stepper_shows_each_step():
    from helpers import bpe

    box = widgets.merge_stepper(bpe.train_steps("aaabdaaabac", 3))
    slider, out = box.children
    assert "11 tokens" in out.value and "the start" in out.value
    slider.value = 3
    assert "5 tokens" in out.value and "merge 3" in out.value
    assert "occurred 2 times" in out.value
    slider, out = widgets.merge_stepper(bpe.train_steps("abcd", 2)).children
    slider.value = 1
    assert "occurred 1 time)" in out.value


def test_next_word_shows_suggestions_and_redraws():
    calls = []

    def suggest(text, k):
        calls.append((text, k))
        if text.endswith("?"):
            raise ValueError("no question marks")
        return [("be", 0.5), ("go", 0.25)][:k] if text.endswith(" ") else []

    box = widgets.next_word(suggest, text="to ", k=2)
    text_box, how_many = box.children[0].children
    out = box.children[1]
    assert "<code>be</code>" in out.value and "0.500" in out.value and "<code>go</code>" in out.value
    how_many.value = 1
    assert calls[-1] == ("to ", 1) and "<code>go</code>" not in out.value
    text_box.value = "zzz"
    assert "no suggestion" in out.value
    text_box.value = "why?"
    assert "Cannot suggest" in out.value


def test_attention_viewer_redraws_for_each_layer_head_and_text():
    tok = data.CharTokenizer.from_text("abcdefgh ")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=2, n_head=2, n_embd=8))
    box = widgets.attention_viewer(model, tok.encode, tok.decode, text="abc abc abc")
    text_box, (layer, head), message, image = box.children[0], box.children[1].children, box.children[2], \
        box.children[3]
    assert message.value == "8 tokens" and bytes(image.value).startswith(b"\x89PNG")  # cropped to block_size
    first = bytes(image.value)
    layer.value, head.value = 1, 1
    assert bytes(image.value) != first
    text_box.value = "xyz"
    assert "Cannot encode" in message.value


def test_prompt_builder_scores_the_prompt_the_controls_describe():
    calls = []

    def score(k, order, labels):
        calls.append((k, order, labels))
        if labels == "bad pair":
            raise ValueError("no such pair")
        return f"{k} shots {order}", {"good": 0.75, "bad": 0.25}

    box = widgets.prompt_builder(score, ["good/bad", "bad pair"], k=2)
    shots, labels = box.children[0].children
    order_box, out = box.children[1], box.children[2]
    assert calls[-1] == (2, "", "good/bad") and "<code>good</code>" in out.value and "0.750" in out.value
    shots.value = 5
    assert calls[-1] == (5, "", "good/bad") and "5 shots" in out.value
    order_box.value = "++-"  # an order sets k to its length
    assert calls[-1] == (3, "++-", "good/bad")
    order_box.value = "+x"
    assert "Order must be" in out.value and calls[-1] == (3, "++-", "good/bad")
    order_box.value = ""
    labels.value = "bad pair"
    assert "Cannot score" in out.value


def test_chat_box_sends_each_message_and_shows_the_transcript():
    seen = []

    def respond(messages):
        seen.append(messages)
        if messages[-1]["content"] == "too long":
            raise ValueError("the conversation is 300 tokens")
        return f"echo {messages[-1]['content']}"

    box = widgets.chat_box(respond, first="hi <b>")
    (text, send, clear, history), out = box.children[0].children, box.children[1]
    assert seen[-1] == [{"role": "user", "content": "hi <b>"}] and "echo hi &lt;b&gt;" in out.value
    text.value = "again"  # pressing Enter sets the value
    assert seen[-1] == [{"role": "user", "content": "again"}]  # one turn by default
    history.value = True
    text.value = "third"
    assert len(seen[-1]) == 5 and seen[-1][1] == {"role": "assistant", "content": "echo hi <b>"}
    text.value = "too long"
    assert "cannot answer" in out.value and text.value == ""
    text.value = "   "
    send.click()
    assert len(seen) == 4
    clear.click()
    assert "no messages yet" in out.value


def test_rag_explorer_asks_with_the_controls_settings():
    calls = []

    def ask(question, k, attack, defence):
        calls.append((question, k, attack, defence))
        if question == "bad":
            raise ValueError("too long")
        return f"Passage: <{k} pages>\n\nQ: {question}\nA:", f"{attack}/{defence}"

    box = widgets.rag_explorer(ask, "Where?", ["none", "instruction"], ["none", "filter"], k=2)
    (text, pages), (attack, defence), out = box.children[0].children, box.children[1].children, box.children[2]
    assert calls[-1] == ("Where?", 2, "none", "none") and "&lt;2 pages&gt;" in out.value
    assert "none/none" in out.value
    pages.value, attack.value, defence.value = 0, "instruction", "filter"
    assert calls[-1] == ("Where?", 0, "instruction", "filter") and "instruction/filter" in out.value
    text.value = "bad"
    assert "Cannot answer" in out.value and "too long" in out.value


def test_every_widget_says_once_under_it_what_to_do_when_reopened():
    """In a kernel, a widget shows as its live view and then the note (a reopened notebook keeps only the note)."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    source = "from helpers import bpe, widgets\nwidgets.merge_stepper(bpe.train_steps('abcd', 2))"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nbclient.NotebookClient(nb, timeout=120).execute()
    outputs = nb.cells[0].outputs
    assert len(outputs) == 2, outputs
    assert "application/vnd.jupyter.widget-view+json" in outputs[0]["data"]
    assert outputs[1]["data"]["text/html"] == widgets.REOPENED_NOTE and "run the cell again" in widgets.REOPENED_NOTE


def test_the_note_also_follows_an_ipywidgets_7_widget(monkeypatch):
    """Colab keeps ipywidgets 7, whose widgets display themselves (_ipython_display_, no _repr_mimebundle_)."""
    shown = []

    class Widget7:
        def _ipython_display_(self):
            shown.append("widget")

    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj.data))
    box = widgets._with_note(Widget7())
    box._ipython_display_()
    assert shown == ["widget", widgets.REOPENED_NOTE]
