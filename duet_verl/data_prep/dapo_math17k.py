"""DAPO-Math-17k, deduplicated English subset (``open-r1/DAPO-Math-17k-Processed``, config ``en``): integer
answers, a training set.

Its ``prompt`` is the original DAPO user message, which wraps the problem in an ``Answer:``-line instruction;
whether the published copy keeps the wrapper is unconfirmed, so it is stripped when present (M gets DUET's
``\\boxed{}`` instruction instead, and m the bare problem). The original verl-schema layout
(``BytedTsinghua-SIA/DAPO-Math-17k``: ``prompt`` as chat messages, no ``solution``) is read too.
Ground truth: ``solution``, else ``reward_model.ground_truth``.
"""

import re
import sys

from duet_verl.data_prep.common import BadRowError, DatasetSpec, field, main

WRAPPER_START = re.compile(
    r"^\s*Solve the following math problem step by step\. The last line of your response should be of the form "
    r"Answer: \$Answer \(without quotes\) where \$Answer is the answer to the problem\.\s*"
)
WRAPPER_END = re.compile(r"\s*Remember to put your answer on its own line after \"Answer:\"\.?\s*$")


def bare_question(prompt) -> str:
    """The problem inside DAPO's wrapper; ``prompt`` is the wrapped text or a list of chat messages."""
    if isinstance(prompt, list):  # chat messages: the (last) user turn
        users = [message.get("content") for message in prompt if message.get("role") == "user"]
        prompt = users[-1] if users else None
    if not isinstance(prompt, str):
        raise BadRowError("no prompt text")
    question = WRAPPER_END.sub("", WRAPPER_START.sub("", prompt)).strip()
    if question.startswith("Solve the following math problem") or 'after "Answer:"' in question:
        raise BadRowError("the prompt has a DAPO wrapper in an unknown wording; cannot cut out the bare problem")
    return question


def convert(row: dict) -> tuple[str, str, dict]:
    answer = field(row, "solution", "reward_model")
    if isinstance(answer, dict):
        answer = answer.get("ground_truth")
    if answer is None or not str(answer).strip():
        raise BadRowError("missing answer (solution / reward_model.ground_truth)")
    extra_info = row.get("extra_info") or {}
    return bare_question(field(row, "prompt", "source_prompt")), str(answer), {"source_id": extra_info.get("index")}


SPEC = DatasetSpec(
    name="dapo_math17k",
    hub_id="open-r1/DAPO-Math-17k-Processed",
    config="en",
    splits={"train": "train"},
    data_source="dapo_math17k",
    ability="math",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
