"""A CPU "learning world" for DUET: M knows a hidden table of facts that m does not, so m needs M's signal.

Per seed, a table maps invented names to two-digit numbers. Every question asks for one name's number in
one of a few phrasings. M is warm-started to answer ``<think>\\n`` + filler sentences (a random number of
them) + ``The number of NAME is 42.`` + ``\\n</think>\\n\\n\\boxed{42}``: only the last sentence matters to
m, so DUET's length penalty has something to remove and M's lengths vary within a GRPO group. m is
warm-started to copy the number from the signal in the DUET "paper" prompt; its SFT examples pair the names
with *random* numbers, so m learns to read the signal and never learns the table (alone it can only guess).

Splits: ``train`` asks each name in all phrasings but one; ``test`` (held out) asks each name in the phrasing
its training questions never used. The facts are the same, so what M memorised transfers; only the
(name, phrasing) pair is new. Rows use ``data_source="world_math"``, which the DUET scorer routes to
``\\boxed{}`` math scoring.

    python -m duet_verl.worlds.learning --out /tmp/duet_world --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

from duet_verl.core import MATH_INSTRUCTION
from duet_verl.worlds.tiny import build_tokenizer

WORLD_DATA_SOURCE = "world_math"
SMALL_TEMPLATE = "paper"  # m's prompt template during warm start; DUET runs on the world should use the same

QUESTION_TEMPLATES = (
    "What is the number of {name}?",
    "Which number does {name} hold?",
    "Recall the number for {name}.",
    "In the table, what number is {name}?",
)
# Redundant steps M pads its reasoning with: no digits, so the fact sentence is the only number in a signal.
FILLERS = (
    "Let me think about this.",
    "I need to look this up.",
    "First I recall the table.",
    "The table lists each name.",
    "Each name has one number.",
    "I should find the right row.",
    "Let me check my memory.",
    "Now I read the row.",
    "I will check it again.",
    "This is a lookup question.",
    "I go through the names one by one.",
    "Careful, the names look alike.",
    "So far so good.",
    "I am almost there.",
)
# Up to 12 fillers (mean 6, ~6 tokens each): warm M's mean response is ~2.5x the shortest one that m can use, so a
# length penalty has room for the paper's ~60% saving.
MAX_FILLERS = 12
VALUES = range(10, 100)  # two-digit answers: a guess is right with probability 1/90


def _name_pool(size: int = 64) -> tuple[str, ...]:
    """Invented two-syllable names, the same for every seed (so one tokenizer serves every world)."""
    rng = random.Random("duet-world-names")
    names: list[str] = []
    while len(names) < size:
        name = "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") + rng.choice("lnrsx") for _ in range(2))
        if name.capitalize() not in names:
            names.append(name.capitalize())
    return tuple(names)


NAME_POOL = _name_pool()


@dataclass(frozen=True)
class World:
    """One seed's hidden table: ``facts`` maps each name to its number."""

    seed: int
    facts: dict[str, int]

    def heldout_template(self, name: str) -> int:
        """The phrasing held out for ``name``: rotates over the names so every phrasing is trained on."""
        return list(self.facts).index(name) % len(QUESTION_TEMPLATES)

    def questions(self, split: str) -> list[tuple[str, str, int]]:
        """``(question, name, value)`` for ``split`` ("train": all phrasings but the held-out one, "test": it)."""
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; valid: train, test")
        out = []
        for name, value in self.facts.items():
            for template_index, template in enumerate(QUESTION_TEMPLATES):
                if (template_index == self.heldout_template(name)) == (split == "test"):
                    out.append((template.format(name=name), name, value))
        return out


def make_world(seed: int, num_facts: int = 24) -> World:
    """Draw ``num_facts`` names and distinct numbers for them from ``seed`` (deterministic)."""
    if not 0 < num_facts <= min(len(NAME_POOL), len(VALUES)):
        raise ValueError(f"num_facts must be in 1..{min(len(NAME_POOL), len(VALUES))}, got {num_facts}")
    rng = random.Random(f"duet-world-{seed}")
    names = rng.sample(NAME_POOL, num_facts)
    values = rng.sample(VALUES, num_facts)
    return World(seed, dict(zip(names, values, strict=True)))


def world_rows(world: World, split: str) -> list[dict]:
    """verl RL rows (M's prompt carries the DUET math instruction; m reads ``extra_info.question``)."""
    return [
        {
            "data_source": WORLD_DATA_SOURCE,
            "prompt": [{"role": "user", "content": question + MATH_INSTRUCTION}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(value)},
            "extra_info": {"split": split, "index": index, "question": question},
        }
        for index, (question, _, value) in enumerate(world.questions(split))
    ]


# ---------------------------------------------------------------------------------------------- SFT examples
def signal_text(name: str, value: int, rng: random.Random) -> str:
    """A verbose chain: 0..MAX_FILLERS filler sentences, then the one sentence m needs.

    The fact sentence writes the name after "of ", as the questions do, so M copies the very token it read
    (" Zornas"); "Zornas is 42." after ``<think>\\n`` is another token and took tiny M several times longer.
    """
    fillers = rng.sample(FILLERS, rng.randint(0, MAX_FILLERS))
    return " ".join([*fillers, f"The number of {name} is {value}."])


def large_completion(signal: str, value: int) -> str:
    """M's response after the generation prompt (thinking on), without the end-of-turn token."""
    return f"<think>\n{signal}\n</think>\n\n\\boxed{{{value}}}"


def small_completion(value: int) -> str:
    """m's continuation after the paper prompt's ``</think>``, without the end-of-turn token."""
    return f"\n\n\\boxed{{{value}}}"


def large_prompt(tokenizer, question: str) -> str:
    """M's prompt exactly as verl's RL dataset renders a world row (chat template, generation prompt, thinking)."""
    messages = [{"role": "user", "content": question + MATH_INSTRUCTION}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def small_prompt(tokenizer, question: str, signal: str) -> str:
    """m's prompt exactly as DUET renders it (``render_small_prompt`` with the paper template, no budget)."""
    from duet_verl.core.prompts import render_small_prompt

    return render_small_prompt(tokenizer, SMALL_TEMPLATE, question, signal).text


def large_sft_rows(world: World, tokenizer, copies: int = 16) -> list[dict]:
    """M's warm-start set: every train question ``copies`` times, each with a fresh random filler amount."""
    rng = random.Random(f"duet-world-large-sft-{world.seed}")
    return [
        {
            "sft_prompt": large_prompt(tokenizer, question),
            "sft_completion": large_completion(signal_text(name, value, rng), value),
        }
        for _ in range(copies)
        for question, name, value in world.questions("train")
    ]


def small_sft_rows(world: World, tokenizer, num: int = 2048) -> list[dict]:
    """m's warm-start set: world names in any phrasing with *random* numbers, so m copies instead of memorising."""
    rng = random.Random(f"duet-world-small-sft-{world.seed}")
    rows = []
    for _ in range(num):
        name, template = rng.choice(list(world.facts)), rng.choice(QUESTION_TEMPLATES)
        value = rng.choice(VALUES)
        question = template.format(name=name)
        rows.append(
            {
                "sft_prompt": small_prompt(tokenizer, question, signal_text(name, value, rng)),
                "sft_completion": small_completion(value),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------- building
def tokenizer_corpus(num_lines: int = 4000) -> list[str]:
    """Text covering the world's vocabulary in the forms prompts use, so names, fillers and numbers are short."""
    rng = random.Random("duet-world-corpus")
    lines = []
    for _ in range(num_lines):
        name, value = rng.choice(NAME_POOL), rng.choice(VALUES)
        question = rng.choice(QUESTION_TEMPLATES).format(name=name)
        lines.append(
            f"user\n{question}{MATH_INSTRUCTION}\nassistant\n{signal_text(name, value, rng)}\n\\boxed{{{value}}}"
        )
    return lines


def build_world_tokenizer(out_dir: str | Path):
    """The tiny Qwen3-style tokenizer (special tokens, chat template) with BPE merges learnt on the world's text."""
    return build_tokenizer(out_dir, vocab_size=1024, corpus=tokenizer_corpus())


def world_paths(out_dir: str | Path) -> dict[str, Path]:
    """Where ``build_world`` writes under ``out_dir``.

    Keys: ``tokenizer``, ``facts`` (the table, JSON), ``train`` and ``test`` (RL rows), ``large_sft`` and
    ``small_sft`` (``sft_prompt`` / ``sft_completion`` text columns, see ``duet_verl.worlds.warm_start``).
    """
    out = Path(out_dir)
    return {
        "tokenizer": out / "tokenizer",
        "facts": out / "facts.json",
        "train": out / "data" / "train.parquet",
        "test": out / "data" / "test.parquet",
        "large_sft": out / "sft" / "large_train.parquet",
        "small_sft": out / "sft" / "small_train.parquet",
    }


def build_world(out_dir: str | Path, seed: int = 0, num_facts: int = 24) -> dict[str, Path]:
    """Write the tokenizer, the RL parquet files and both SFT sets under ``out_dir``; return ``world_paths``."""
    import pandas as pd

    world = make_world(seed, num_facts)
    paths = world_paths(out_dir)
    tokenizer = build_world_tokenizer(paths["tokenizer"])
    for key in ("train", "large_sft"):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
    paths["facts"].write_text(json.dumps({"seed": seed, "facts": world.facts}, indent=2))
    for split in ("train", "test"):
        pd.DataFrame(world_rows(world, split)).to_parquet(paths[split])
    pd.DataFrame(large_sft_rows(world, tokenizer)).to_parquet(paths["large_sft"])
    pd.DataFrame(small_sft_rows(world, tokenizer)).to_parquet(paths["small_sft"])
    return paths


def load_world(out_dir: str | Path) -> World:
    """The table ``build_world`` wrote under ``out_dir``."""
    data = json.loads(world_paths(out_dir)["facts"].read_text())
    return World(data["seed"], {name: int(value) for name, value in data["facts"].items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write the tokenizer, data and SFT sets into")
    parser.add_argument("--seed", type=int, default=0, help="draws the table of facts")
    parser.add_argument("--num-facts", type=int, default=24, help="rows in the hidden table")
    args = parser.parse_args()
    paths = build_world(args.out, args.seed, args.num_facts)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))


if __name__ == "__main__":
    main()
