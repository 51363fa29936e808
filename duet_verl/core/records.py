"""One record per m answer, with the same field names wherever one is written.

Three writers describe the same thing (an M response, the signal m read, m's answer and its score): the training
dump (``trainer.rollout_data_dir``), the validation generations (``trainer.validation_data_dir``) and
``python -m duet_verl.evaluate``'s ``records.jsonl``. Each writes :data:`ANSWER_FIELDS` plus its own context
fields. docs/evaluation.md ("Answer records") is rendered from here: ``python -m duet_verl.core.records``.
"""

from __future__ import annotations

ANSWER_FIELDS = {
    "data_source": "the row's `data_source` (it picks the scorer)",
    "question": "the question as m reads it (`extra_info.question`)",
    "ground_truth": "the reference answer (`reward_model.ground_truth`)",
    "large_text": "M's response, decoded",
    "signal": "what m read from it: the text between the thinking markers",
    "signal_case": "how the signal was found (`duet_verl.core.SignalCase`: `think_block`, `unclosed`, ...)",
    "small_text": "m's answer, decoded as the scorer read it (`null` where m does not answer: evaluate's M modes)",
    "correct": "the score of the answer that counts: m's, or M's own in evaluate's `large` and `concise` modes",
    "large_tokens": "M's response tokens",
    "large_thinking_tokens": "M's thinking tokens (up to and including the end marker)",
    "small_tokens": "m's answer tokens",
}
TRAINING_FIELDS = {
    "step": "the training step",
    "lambda": "λ at this step",
    "large_row": "the M response's row in the step's batch (m answers of one response share it)",
    "penalised_length": "the length λ's penalty used (`duet.length_measure`)",
    "small_prompt": "m's whole prompt, decoded with special tokens",
    "baseline_correct": "m's score without the signal (marginal utility's r_m; `null` when it is off)",
    "reward_large": "M's reward for the response: r_Mm − r_m − λ·length/B",
}
VALIDATION_FIELDS = {"step": "the step after which validation ran (0: before training)"}
EVALUATE_FIELDS = {
    "benchmark": "the data file's name",
    "mode": "`duet`, `large`, `small` or `concise`",
    "seed": "the per-sample seed",
    "row": "the question's position in the file (the resume key)",
    "question_id": "`extra_info.index`",
    "large_model": "the M that wrote `large_text`: base M or trained M",
    "prediction": "the answer the scorer extracted",
    "score_method": "how the score was decided (`exact`, `numeric`, `math_verify`, `no_answer`, ...)",
    "small_prompt_tokens": "m's prompt tokens",
    "signal_tokens_cut": "signal tokens dropped to fit m's prompt budget",
    "large_seconds": "M's generation call's time divided by its prompts",
    "small_seconds": "m's, likewise",
}
WRITERS = {
    "training dump (`trainer.rollout_data_dir/duet_step_N.jsonl`)": TRAINING_FIELDS,
    "validation (`trainer.validation_data_dir/val_step_N.jsonl`)": VALIDATION_FIELDS,
    "evaluate (`OUT/records.jsonl`)": EVALUATE_FIELDS,
}


def markdown() -> str:
    """The "Answer records" tables of docs/evaluation.md."""
    lines = ["Every record:", "", "| field | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in ANSWER_FIELDS.items()]
    for writer, fields in WRITERS.items():
        lines += ["", f"Added by the {writer}:", "", "| field | meaning |", "|---|---|"]
        lines += [f"| `{name}` | {meaning} |" for name, meaning in fields.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
