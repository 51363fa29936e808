import pytest

from duet_verl.core import SignalCase, extract_signal, thinking_token_count


@pytest.mark.parametrize(
    ("response", "text", "case"),
    [
        ("<think>\nadd them\n</think>\n\n\\boxed{5}", "add them", SignalCase.THINK_BLOCK),
        ("add them</think>the answer is 5", "add them", SignalCase.CLOSE_ONLY),
        ("just an answer, no markers", "just an answer, no markers", SignalCase.NO_THINK),
        ("<think>\nstill thinking when cut off", "still thinking when cut off", SignalCase.UNCLOSED),
        ("", "", SignalCase.EMPTY),
        ("  \n\t ", "", SignalCase.EMPTY),
        ("<think>first</think> answer <think>second</think>", "first", SignalCase.THINK_BLOCK),
        ("<think>stray <think>real</think>", "real", SignalCase.THINK_BLOCK),
        ("<think></think>answer", "", SignalCase.THINK_BLOCK),
        ("before</think>after</think>", "before", SignalCase.CLOSE_ONLY),
    ],
)
def test_extract_signal(response, text, case):
    signal = extract_signal(response)
    assert (signal.text, signal.case) == (text, case)


@pytest.mark.parametrize(
    ("ids", "expected"),
    [([5, 6, 99, 7, 8], 3), ([5, 6, 7], 3), ([], 0), ([99], 1), ([99, 1, 99], 1)],
)
def test_thinking_token_count(ids, expected):
    assert thinking_token_count(ids, think_end_id=99) == expected
