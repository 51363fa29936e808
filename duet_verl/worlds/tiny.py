"""Offline tiny fixtures: a Qwen3-style tokenizer, two random Qwen3 models and small verl parquet sets.

Everything is built locally in seconds (nothing is downloaded), so tests, the CPU quickstart and
benchmarks run on any machine. The tokenizer is a small byte-level BPE that carries the real Qwen3
special tokens and the real Qwen3 chat template, so prompt rendering behaves as with Qwen3.

    python -m duet_verl.worlds.tiny --out /tmp/duet_tiny
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from duet_verl.core import MATH_INSTRUCTION

# Qwen3's added tokens, in Qwen3's id order (ids 151643-151668 there; here they follow the BPE vocab).
QWEN3_ADDED_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
)  # fmt: skip
# Qwen3 marks these two as normal (non-special) added tokens: they survive skip_special_tokens decoding.
NON_SPECIAL_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>")

TINY_DATA_SOURCE = "tiny_math"


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of a tiny random Qwen3; "large" plays M and "small" plays m."""

    num_hidden_layers: int
    hidden_size: int = 64
    intermediate_size: int = 128
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32  # the smallest head size vLLM's CPU attention supports (16 is refused)


MODEL_SPECS = {"large": TinyModelSpec(num_hidden_layers=4), "small": TinyModelSpec(num_hidden_layers=2)}


def chat_template() -> str:
    """The real Qwen3 chat template (hybrid thinking, honours ``enable_thinking``)."""
    return resources.files("duet_verl.worlds").joinpath("assets/qwen3_chat_template.jinja").read_text()


def _corpus(num_lines: int = 3000, seed: int = 0) -> list[str]:
    """Synthetic math-flavoured text for training the BPE merges (deterministic)."""
    rng = random.Random(seed)
    words = (
        "Let's think step by step and output the final answer within \\boxed{} . The answer is "
        "What is Compute Find the value of sum product Therefore so we have First Next then "
        "user assistant question signal reasoning Answer: A B C D wait check again because"
    ).split()
    latex = ["\\frac{1}{2}", "\\sqrt{3}", "x^2", "\\pi", "\\boxed{7}", "\\cdot", "\\left(", "\\right)", "$", "="]
    lines = []
    for _ in range(num_lines):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        parts = rng.choices(words, k=rng.randint(3, 12)) + [f"{a} + {b} = {a + b}", rng.choice(latex)]
        rng.shuffle(parts)
        lines.append(" ".join(parts))
    return lines


def build_tokenizer(
    out_dir: str | Path, vocab_size: int = 1024, corpus: Iterable[str] | None = None, split_digits: bool = False
):
    """Train a byte-level BPE, add Qwen3's special tokens and chat template, save it, and return it.

    ``corpus`` replaces the default math-flavoured text, so a task's own words become single tokens.
    ``split_digits`` makes every digit its own token, as Qwen3's tokenizer does (arithmetic digit by digit).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if split_digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), tok.pre_tokenizer])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(_corpus() if corpus is None else corpus, trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    from tokenizers import AddedToken

    hf.add_tokens([AddedToken(t, special=t not in NON_SPECIAL_TOKENS, normalized=False) for t in QWEN3_ADDED_TOKENS])
    hf.chat_template = chat_template()
    hf.model_max_length = 131072
    hf.save_pretrained(str(out_dir))
    return hf


# A second family for heterogeneous pairs: Llama-3-style special tokens, its own chat template, and thinking tags
# that are *special* tokens (dropped by skip_special_tokens decoding, unlike Qwen3's).
LLAMA_SPECIAL_TOKENS = (
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    "<think>", "</think>",
)  # fmt: skip
LLAMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{{ message['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{% if enable_thinking is defined and not enable_thinking %}"
    "<think>\n\n</think>\n\n{% else %}<think>\n{% endif %}{% endif %}"
)


def build_llama_tokenizer(out_dir: str | Path, vocab_size: int = 768):
    """A byte-level BPE of another size and corpus with Llama-3-style special tokens and chat template; its
    template opens ``<think>`` in the prompt when thinking is on, so M's response holds only ``</think>``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(_corpus(num_lines=2000, seed=1), trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<|end_of_text|>"
    )
    hf.add_tokens([AddedToken(t, special=True, normalized=False) for t in LLAMA_SPECIAL_TOKENS])
    hf.chat_template = LLAMA_CHAT_TEMPLATE
    hf.model_max_length = 131072
    hf.save_pretrained(str(out_dir))
    return hf


def _save_random_model(out_dir, tokenizer, size, seed: int, family: str, bos_token_id, eos_token: str) -> Path:
    """A randomly initialised tiny ``family`` model (``size``: a MODEL_SPECS key or a spec), saved with its
    generation config and the tokenizer beside it."""
    import torch
    import transformers

    spec = size if isinstance(size, TinyModelSpec) else MODEL_SPECS[size]
    config_cls, model_cls = (getattr(transformers, f"{family}{suffix}") for suffix in ("Config", "ForCausalLM"))
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        head_dim=spec.head_dim,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids(eos_token),
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    out = Path(out_dir)
    model_cls(config).save_pretrained(str(out))
    bos = {} if bos_token_id is None else {"bos_token_id": bos_token_id}
    transformers.GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, **bos
    ).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def build_llama_model(out_dir: str | Path, tokenizer, size: str | TinyModelSpec = "large", seed: int = 0) -> Path:
    """A randomly initialised tiny Llama with the Llama-style tokenizer beside it (``build_model``'s shapes)."""
    return _save_random_model(out_dir, tokenizer, size, seed, "Llama", tokenizer.bos_token_id, "<|eot_id|>")


def build_model(out_dir: str | Path, tokenizer, size: str | TinyModelSpec = "large", seed: int = 0) -> Path:
    """Save a randomly initialised tiny Qwen3 (``size``: a MODEL_SPECS key or a spec) with the tokenizer beside it."""
    return _save_random_model(out_dir, tokenizer, size, seed, "Qwen3", None, "<|im_end|>")


def tiny_rows(num: int, split: str, seed: int = 0) -> list[dict]:
    """Arithmetic questions in verl's row schema, with the DUET math instruction appended for M."""
    rng = random.Random(f"{split}-{seed}")
    rows = []
    for index in range(num):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        question = f"What is {a} + {b}?"
        rows.append(
            {
                "data_source": TINY_DATA_SOURCE,
                "prompt": [{"role": "user", "content": question + MATH_INSTRUCTION}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": str(a + b)},
                "extra_info": {"split": split, "index": index, "question": question},
            }
        )
    return rows


def build_dataset(out_dir: str | Path, num_train: int = 16, num_test: int = 8) -> dict[str, Path]:
    """Write ``train.parquet`` and ``test.parquet`` of tiny arithmetic rows."""
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, num in (("train", num_train), ("test", num_test)):
        paths[split] = out / f"{split}.parquet"
        pd.DataFrame(tiny_rows(num, split)).to_parquet(paths[split])
    return paths


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None) -> float:
    """Shaped reward for tiny random models (verl ``custom_reward_function`` signature).

    1.0 for the right ``\\boxed{}`` answer; otherwise the fraction of response characters that are digits,
    so that untrained models still see rewards that differ within a GRPO group (all-equal rewards give
    zero advantages and no gradient). For demos and tests only; real runs score with ``duet_verl.core``.
    """
    if f"\\boxed{{{ground_truth}}}" in solution_str:
        return 1.0
    text = solution_str.strip()
    return sum(c.isdigit() for c in text) / len(text) if text else 0.0


def build_all(out_dir: str | Path) -> dict[str, Path]:
    """Build tokenizer, both models and the datasets under ``out_dir``; return their paths."""
    out = Path(out_dir)
    tokenizer = build_tokenizer(out / "tokenizer")
    paths = {size: build_model(out / f"model_{size}", tokenizer, size, seed=i) for i, size in enumerate(MODEL_SPECS)}
    paths["tokenizer"] = out / "tokenizer"
    paths.update(build_dataset(out / "data"))
    return paths


def build_once(out_dir: str | Path) -> Path:
    """``build_all`` into ``out_dir`` unless it already holds the tiny data (the CPU recipes' check); ``out_dir``."""
    out = Path(out_dir)
    if not (out / "data" / "train.parquet").is_file():
        build_all(out)
    return out


def build_llama_pair(out_dir: str | Path) -> dict[str, Path]:
    """The Llama-style family's tokenizer and both tiny models under ``out_dir`` (heterogeneous pairs)."""
    out = Path(out_dir)
    tokenizer = build_llama_tokenizer(out / "llama_tokenizer")
    paths = {
        f"llama_{size}": build_llama_model(out / f"llama_{size}", tokenizer, size, seed=10 + i)
        for i, size in enumerate(MODEL_SPECS)
    }
    paths["llama_tokenizer"] = out / "llama_tokenizer"
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write the tokenizer, models and data into")
    paths = build_all(parser.parse_args().out)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))


if __name__ == "__main__":
    main()
