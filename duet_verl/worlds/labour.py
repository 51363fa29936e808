"""A "division of labour" world: every answer needs a fact only M knows *and* written arithmetic that m can do.

Per seed, a hidden table maps invented names to two-digit numbers (as in ``duet_verl.worlds.learning``). Every
question asks for one name's number plus a two-digit addend ("What is the number of Zornas plus 37?"). The sum
is worked out digit by digit, carries written down::

    The number of Zornas is 58. 58 + 37: 8 + 7 = 15, carry 1; 5 + 3 + 1 = 9; so 95.

M is warm-started to write filler sentences (a random number), the fact, the worked steps and ``\\boxed{95}``;
m is warm-started to work the steps itself from a fact given in the signal (random facts, never the table), so
the shortest signal m can use is the fact alone, while M alone must keep the steps. The ablation M
(``large_direct_sft``) is warm-started on the same questions with the steps left out, to show they are needed.

Tokens: every digit is its own token (as in Qwen3's tokenizer), so a step is a one-digit lookup.

Splits: each name is asked with ``TRAIN_ADDENDS`` addends in training and ``TEST_ADDENDS`` other addends held
out, so a held-out question pairs a name and an addend that training never paired.

    python -m duet_verl.worlds.labour --out /tmp/duet_labour --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from duet_verl.core import MATH_INSTRUCTION
from duet_verl.experiments.runs import Settings
from duet_verl.worlds.learning import (
    FILLERS,
    NAME_POOL,
    SMALL_TEMPLATE,
    VALUES,
    WORLD_DATA_SOURCE,
    large_completion,
    large_prompt,
    make_world,
    small_prompt,
)
from duet_verl.worlds.learning import world_paths as table_world_paths
from duet_verl.worlds.tiny import build_tokenizer
from duet_verl.worlds.warm_start import SFTRecipe

QUESTION_TEMPLATES = (
    "What is the number of {name} plus {addend}?",
    "Add {addend} to the number of {name}.",
    "What do the number of {name} and {addend} sum to?",
    "Take the number of {name} and add {addend}.",
)
MAX_FILLERS = 8  # up to 8 fillers (~6 tokens each): room for a length penalty before it reaches the fact and steps
TRAIN_ADDENDS, TEST_ADDENDS = 12, 2  # addends per name in each split
MAX_LENGTH = 192  # tokens per SFT example: the longest (m reading a signal with the steps) is about 175
# M, the ablation M without the steps (the same architecture and initial weights) and m
WARM_START_RECIPES = {
    "large": SFTRecipe("large", "large_sft", epochs=8, lr=3e-3, max_length=MAX_LENGTH),
    "large_direct": SFTRecipe("large", "large_direct_sft", epochs=8, lr=3e-3, max_length=MAX_LENGTH),
    "small": SFTRecipe("small", "small_sft", epochs=8, lr=3e-3, max_length=MAX_LENGTH),
}
# RL on this world (benchmarks/labour_world.py, the CPU main job): warm M writes ~80 tokens (fillers ~30, the fact
# ~10, the worked sum ~30); the fact alone, which m can use, is ~23, hence B = 24.
RL_SETTINGS = Settings(steps=30, large_response=160, small_response=64, length_bound=24.0, lambda_eta=0.05)
DUET_OVERRIDES = ("duet.small_prompt_length=256",)  # m reads the question, its template and M's whole response


@dataclass(frozen=True)
class Question:
    text: str
    name: str
    value: int
    addend: int

    @property
    def answer(self) -> int:
        return self.value + self.addend


def ask(name: str, value: int, addend: int, rng: random.Random) -> Question:
    """The question about ``name``'s number plus ``addend``, in a phrasing drawn from ``rng``."""
    return Question(rng.choice(QUESTION_TEMPLATES).format(name=name, addend=addend), name, value, addend)


@dataclass(frozen=True)
class LabourWorld:
    """One seed's hidden table and, per name, the addends of each split (disjoint)."""

    seed: int
    facts: dict[str, int]
    addends: dict[str, dict[str, list[int]]]  # name -> split -> addends

    def questions(self, split: str) -> list[Question]:
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; valid: train, test")
        rng = random.Random(f"duet-labour-phrasing-{self.seed}-{split}")
        return [
            ask(name, value, addend, rng) for name, value in self.facts.items() for addend in self.addends[name][split]
        ]


def make_labour_world(seed: int, num_facts: int = 24) -> LabourWorld:
    """The table of ``duet_verl.worlds.learning.make_world`` plus each name's train and held-out addends."""
    facts = make_world(seed, num_facts).facts
    rng = random.Random(f"duet-labour-{seed}")
    addends = {}
    for name in facts:
        drawn = rng.sample(VALUES, TRAIN_ADDENDS + TEST_ADDENDS)
        addends[name] = {"train": drawn[:TRAIN_ADDENDS], "test": drawn[TRAIN_ADDENDS:]}
    return LabourWorld(seed, facts, addends)


# ---------------------------------------------------------------------------------------------- texts
def worked_steps(value: int, addend: int) -> str:
    """Two-digit addition written out: ones with their carry, then tens (which may write a hundreds digit)."""
    ones = value % 10 + addend % 10
    carry = ones // 10
    tens = value // 10 + addend // 10 + carry
    ones_step = f"{value % 10} + {addend % 10} = {ones}" + (f", carry {carry}" if carry else "")
    tens_step = f"{value // 10} + {addend // 10}" + (f" + {carry}" if carry else "") + f" = {tens}"
    return f"{value} + {addend}: {ones_step}; {tens_step}; so {value + addend}."


def fact_sentence(name: str, value: int) -> str:
    return f"The number of {name} is {value}."


def plain_sum(value: int, addend: int) -> str:
    """A plain sum with its steps left out: still a chain that ends with its answer, never filler alone (a chain of
    fillers only, or an empty one, would teach M that an empty signal is a way to answer)."""
    return f"{value} + {addend} is {value + addend}."


def verbose_chain(rng: random.Random, *sentences: str) -> str:
    """0..MAX_FILLERS filler sentences, then ``sentences``."""
    return " ".join([*rng.sample(FILLERS, rng.randint(0, MAX_FILLERS)), *sentences])


def signal_text(question: Question, rng: random.Random, steps: bool = True) -> str:
    """M's verbose chain: filler sentences, the fact, and (``steps``) the worked sum."""
    sentences = [fact_sentence(question.name, question.value)]
    if steps:
        sentences.append(worked_steps(question.value, question.addend))
    return verbose_chain(rng, *sentences)


def small_completion(question: Question) -> str:
    """m's continuation after the paper prompt's ``</think>``: the steps from the fact in the signal, then the box."""
    return f"\n\n{worked_steps(question.value, question.addend)} \\boxed{{{question.answer}}}"


def world_rows(world: LabourWorld, split: str) -> list[dict]:
    """verl RL rows (M's prompt carries the DUET math instruction; m reads ``extra_info.question``)."""
    return [
        {
            "data_source": WORLD_DATA_SOURCE,
            "prompt": [{"role": "user", "content": q.text + MATH_INSTRUCTION}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(q.answer)},
            "extra_info": {"split": split, "index": index, "question": q.text},
        }
        for index, q in enumerate(world.questions(split))
    ]


def arithmetic_question(first: int, second: int) -> str:
    return f"What is {first} plus {second}?"


def large_sft_rows(
    world: LabourWorld, tokenizer, steps: bool = True, copies: int = 6, sums: int = 1536, steps_left_out: float = 0.0
) -> list[dict]:
    """M's warm-start set: every train question ``copies`` times, each with a fresh filler amount, and ``sums``
    plain sums of random numbers (M is the capable model: it can add any two numbers, not only the table's).
    ``steps_left_out``: the share of M's chains that end before the worked sum (answer still right), so that a
    sampled M sometimes ends its thinking after the fact and RL can see what that is worth."""
    rng = random.Random(f"duet-labour-large-sft-{world.seed}")

    def with_steps() -> bool:  # 0 draws nothing, so the set is the one from before the option
        return steps and (steps_left_out == 0 or rng.random() >= steps_left_out)

    rows = [
        {
            "sft_prompt": large_prompt(tokenizer, q.text),
            "sft_completion": large_completion(signal_text(q, rng, with_steps()), q.answer),
        }
        for _ in range(copies)
        for q in world.questions("train")
    ]
    for _ in range(sums):
        value, addend = rng.choice(VALUES), rng.choice(VALUES)
        chain = verbose_chain(rng, worked_steps(value, addend) if with_steps() else plain_sum(value, addend))
        rows.append(
            {
                "sft_prompt": large_prompt(tokenizer, arithmetic_question(value, addend)),
                "sft_completion": large_completion(chain, value + addend),
            }
        )
    rng.shuffle(rows)
    return rows


def random_question(world: LabourWorld, rng: random.Random) -> Question:
    """A world name with a *random* number and addend: m learns the steps, never the table."""
    name, value, addend = rng.choice(list(world.facts)), rng.choice(VALUES), rng.choice(VALUES)
    return ask(name, value, addend, rng)


def small_sft_rows(world: LabourWorld, tokenizer, num: int = 3072) -> list[dict]:
    """m's warm-start set: signals with the fact, half of them with M's worked steps too; m always works them."""
    rng = random.Random(f"duet-labour-small-sft-{world.seed}")
    rows = []
    for _ in range(num):
        q = random_question(world, rng)
        signal = signal_text(q, rng, steps=rng.random() < 0.5)
        rows.append({"sft_prompt": small_prompt(tokenizer, q.text, signal), "sft_completion": small_completion(q)})
    return rows


# ---------------------------------------------------------------------------------------------- building
def tokenizer_corpus(num_lines: int = 4000) -> list[str]:
    """Questions and M's chains with random names and numbers, so the world's words are single tokens."""
    rng = random.Random("duet-labour-corpus")
    lines = []
    for _ in range(num_lines):
        value, addend = rng.choice(VALUES), rng.choice(VALUES)
        q = ask(rng.choice(NAME_POOL), value, addend, rng)
        lines.append(f"user\n{q.text}{MATH_INSTRUCTION}\nassistant\n{signal_text(q, rng)}\n\\boxed{{{q.answer}}}")
    return lines


def world_paths(out_dir: str | Path) -> dict[str, Path]:
    """``duet_verl.worlds.learning.world_paths`` plus ``large_direct_sft`` (M's set without the steps)."""
    return {**table_world_paths(out_dir), "large_direct_sft": Path(out_dir) / "sft" / "large_direct_train.parquet"}


def build_labour_world(
    out_dir: str | Path, seed: int = 0, num_facts: int = 24, steps_left_out: float = 0.0
) -> dict[str, Path]:
    """Write the world (``world_paths``); ``steps_left_out``: see ``large_sft_rows`` (M's set only)."""
    import pandas as pd

    if not 0.0 <= steps_left_out < 1.0:
        raise ValueError(f"steps_left_out={steps_left_out}: a share of M's chains, 0 <= share < 1")
    world = make_labour_world(seed, num_facts)
    paths = world_paths(out_dir)
    tokenizer = build_tokenizer(paths["tokenizer"], vocab_size=1024, corpus=tokenizer_corpus(), split_digits=True)
    for key in ("train", "large_sft"):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
    about = {"seed": seed, "steps_left_out": steps_left_out, "facts": world.facts, "addends": world.addends}
    paths["facts"].write_text(json.dumps(about, indent=2))
    for split in ("train", "test"):
        pd.DataFrame(world_rows(world, split)).to_parquet(paths[split])
    large_rows = large_sft_rows(world, tokenizer, steps=True, steps_left_out=steps_left_out)
    pd.DataFrame(large_rows).to_parquet(paths["large_sft"])
    pd.DataFrame(large_sft_rows(world, tokenizer, steps=False)).to_parquet(paths["large_direct_sft"])
    pd.DataFrame(small_sft_rows(world, tokenizer)).to_parquet(paths["small_sft"])
    return paths


# ---------------------------------------------------------------------------------------------- measuring m
QUESTION_NAME = re.compile(r"number of (\w+)")  # every phrasing names the table's row this way


def question_name(question: str) -> str:
    return QUESTION_NAME.search(question).group(1)


def oracle_small_accuracy(world_dir: str | Path, small: str | Path, max_new_tokens: int = 64) -> float:
    """m's greedy accuracy on the held-out questions when its signal is the right fact alone (an oracle M's): how
    well m works the sums by itself, apart from what M sends it (the paper prompt, as DUET renders it)."""
    from duet_verl.core import render_small_prompt, score_answer
    from duet_verl.inference.backends import HFGenerator

    questions = load_labour_world(world_dir).questions("test")
    generator = HFGenerator(str(small), batch_size=len(questions), device="cpu")
    prompts = [
        render_small_prompt(generator.tokenizer, SMALL_TEMPLATE, q.text, fact_sentence(q.name, q.value)).token_ids
        for q in questions
    ]
    answers = generator.generate(prompts, max_new_tokens, 0.0, 1.0, 0, seeds=[0] * len(prompts))
    generator.close()
    scores = [
        score_answer(WORLD_DATA_SOURCE, a.text, str(q.answer)).score for a, q in zip(answers, questions, strict=True)
    ]
    return sum(scores) / len(scores)


def signal_facts(world: LabourWorld, records: list[dict]) -> dict[str, float | None]:
    """Which of DUET's held-out answers had the right fact in M's signal (``evaluate``'s duet records), and m's
    accuracy with and without it: whether a wrong answer is M's signal or m's sum."""

    def has_fact(record: dict) -> bool:
        name = question_name(record["question"])
        return fact_sentence(name, world.facts[name]) in (record["signal"] or "")

    right = [r for r in records if has_fact(r)]
    other = [r for r in records if not has_fact(r)]

    def accuracy(rows: list[dict]) -> float | None:
        return sum(float(r["correct"]) for r in rows) / len(rows) if rows else None

    return {"right_fact_share": len(right) / len(records), "accuracy_with_right_fact": accuracy(right),
            "accuracy_without_right_fact": accuracy(other)}  # fmt: skip


def load_labour_world(out_dir: str | Path) -> LabourWorld:
    data = json.loads(world_paths(out_dir)["facts"].read_text())
    return LabourWorld(data["seed"], {k: int(v) for k, v in data["facts"].items()}, data["addends"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps-left-out", type=float, default=0.0, help="share of M's chains without the steps")
    args = parser.parse_args()
    paths = build_labour_world(args.out, args.seed, steps_left_out=args.steps_left_out)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))


if __name__ == "__main__":
    main()
