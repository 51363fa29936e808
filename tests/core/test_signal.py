import pytest

from duet_verl.core import ResponseDecoder, SignalCase, extract_signal, marker_token_id, thinking_token_count


@pytest.mark.parametrize(
    ("response", "text", "case"),
    [
        ("<think>\nadd them\n</think>\n\n\\boxed{5}", "add them", SignalCase.THINK_BLOCK),
        ("preamble <think>add them</think> answer", "add them", SignalCase.THINK_BLOCK),
        ("add them</think>the answer is 5", "add them", SignalCase.CLOSE_ONLY),
        ("just an answer, no markers", "just an answer, no markers", SignalCase.NO_THINK),
        ("<think>\nstill thinking when cut off", "still thinking when cut off", SignalCase.UNCLOSED),
        ("text <think>cut off", "cut off", SignalCase.UNCLOSED),
        ("", "", SignalCase.EMPTY),
        ("  \n\t ", "", SignalCase.EMPTY),
        # several blocks: the reasoning ends at the first </think> (Qwen3's template splits there)
        ("<think>first</think> answer <think>second</think>", "first", SignalCase.THINK_BLOCK),
        ("before</think>after</think>", "before", SignalCase.CLOSE_ONLY),
        ("a</think>b<think>c</think>", "a", SignalCase.CLOSE_ONLY),
        # a <think> that never closes before a second one opens: after the last <think> (Qwen3's reading)
        ("<think>stray <think>real</think>", "real", SignalCase.THINK_BLOCK),
        ("<think>one<think>two", "two", SignalCase.UNCLOSED),
        # empty thinking blocks
        ("<think></think>answer", "", SignalCase.THINK_BLOCK),
        ("<think>\n\n</think>\n\nanswer", "", SignalCase.THINK_BLOCK),
        ("</think>answer", "", SignalCase.CLOSE_ONLY),
        ("<think>", "", SignalCase.UNCLOSED),
        # markers must match exactly
        ("<Think>a</Think>", "<Think>a</Think>", SignalCase.NO_THINK),
        ("<think >a", "<think >a", SignalCase.NO_THINK),
    ],
)
def test_extract_signal(response, text, case):
    signal = extract_signal(response)
    assert (signal.text, signal.case) == (text, case)


@pytest.mark.parametrize(
    ("case", "closed"),
    [
        (SignalCase.THINK_BLOCK, True),
        (SignalCase.CLOSE_ONLY, True),
        (SignalCase.UNCLOSED, False),
        (SignalCase.NO_THINK, False),
        (SignalCase.EMPTY, False),
    ],
)
def test_closed_says_whether_m_finished_thinking(case, closed):
    response = {
        SignalCase.THINK_BLOCK: "<think>a</think>b",
        SignalCase.CLOSE_ONLY: "a</think>b",
        SignalCase.UNCLOSED: "<think>a",
        SignalCase.NO_THINK: "a",
        SignalCase.EMPTY: "",
    }[case]
    assert extract_signal(response).closed is closed


def test_case_values_are_the_logged_strings():
    assert {c.value for c in SignalCase} == {"think_block", "close_only", "unclosed", "no_think", "empty"}


END = 99


@pytest.mark.parametrize(
    ("ids", "count"),
    [
        ([1, 2, END, 3, 4], 3),  # thinking includes its closing tag
        ([END, 3], 1),
        ([1, END, 2, END], 2),  # first </think>
        ([1, 2, 3], 3),  # never closed: all of it is thinking
        ([], 0),
    ],
)
def test_thinking_token_count(ids, count):
    assert thinking_token_count(ids, END) == count


def test_other_thinking_markers():
    response = "<|begin_of_thought|>add them<|end_of_thought|>\\boxed{5}"
    signal = extract_signal(response, "<|begin_of_thought|>", "<|end_of_thought|>")
    assert (signal.text, signal.case) == ("add them", SignalCase.THINK_BLOCK)
    assert extract_signal(response).case == SignalCase.NO_THINK  # Qwen3's markers are not in it


def test_special_thinking_markers_survive_decoding(llama_assets, tiny_tokenizer):
    """A Llama-style M whose ``</think>`` is a special token: plain ``skip_special_tokens`` decoding loses it (and
    the whole response would become the signal); ``ResponseDecoder`` keeps the markers and drops the rest."""
    from transformers import AutoTokenizer

    llama = AutoTokenizer.from_pretrained(str(llama_assets["llama_tokenizer"]))
    ids = llama("add them</think> \\boxed{5}<|eot_id|>", add_special_tokens=False)["input_ids"]
    assert "</think>" not in llama.decode(ids, skip_special_tokens=True)
    decoder = ResponseDecoder(llama)
    text = decoder.decode(ids)
    assert "</think>" in text and "<|eot_id|>" not in text
    assert extract_signal(text).text == "add them"
    assert decoder.restore(ids, llama.decode(ids, skip_special_tokens=True)) == text
    end = marker_token_id(llama, "</think>")
    assert end >= 0 and thinking_token_count(ids, end) == ids.index(end) + 1
    assert marker_token_id(llama, "not one token") == -1
    # Qwen3's markers are ordinary tokens: the decoder changes nothing there.
    qwen_ids = tiny_tokenizer("<think>add</think>5<|im_end|>", add_special_tokens=False)["input_ids"]
    plain = tiny_tokenizer.decode(qwen_ids, skip_special_tokens=True)
    assert ResponseDecoder(tiny_tokenizer).decode(qwen_ids) == plain
    assert ResponseDecoder(tiny_tokenizer).restore(qwen_ids, "as given") == "as given"
