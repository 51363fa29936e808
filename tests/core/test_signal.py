import pytest

from duet_verl.core import SignalCase, extract_signal, thinking_token_count


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
