"""Warm-start the world's M and m with verl's own SFT trainer on CPU, and measure what they learnt.

verl's default SFT dataset renders chat messages turn by turn, which cannot express either warm start: Qwen3's
template drops the thinking block of an assistant turn rendered on its own (the dataset's sanity check then
fails), and m's DUET "paper" prompt is raw text, not a chat. So the SFT sets hold rendered text
(``sft_prompt``, ``sft_completion``) and :class:`PromptCompletionSFTDataset`, plugged in through verl's
``data.custom_cls``, tokenizes them the way the DUET rollouts see them: the prompt as the rollout's prompt ids,
the completion (loss on it only) followed by the end-of-turn token. Training runs
``torchrun -m duet_verl.cpu.sft_trainer`` (verl's ``sft_trainer`` with gloo on the CPU backend).

    python -m duet_verl.worlds.warm_start --world /tmp/duet_world --out /tmp/duet_world/models
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch

from duet_verl.worlds.tiny import TinyModelSpec, build_model

# Wider than the random fixtures: M must memorise the table, m must find the number in a signal.
WORLD_MODEL_SPECS = {
    "large": TinyModelSpec(num_hidden_layers=4, hidden_size=128, intermediate_size=256),
    "small": TinyModelSpec(num_hidden_layers=2, hidden_size=128, intermediate_size=256),
}


MAX_LENGTH = 160  # tokens per SFT example; the world's longest is about 130


@dataclass(frozen=True)
class SFTRecipe:
    """One warm start: which architecture, on which SFT set (a ``world_paths`` key), how long and how fast
    (the table world's two are sized for ≤ 3 min on 2 CPU cores)."""

    size: str  # a WORLD_MODEL_SPECS key
    train_set: str
    epochs: int
    lr: float
    batch_size: int = 32
    max_length: int = MAX_LENGTH


SFT_RECIPES = {"large": SFTRecipe("large", "large_sft", epochs=8, lr=3e-3),
               "small": SFTRecipe("small", "small_sft", epochs=6, lr=3e-3)}  # fmt: skip


class PromptCompletionSFTDataset(torch.utils.data.Dataset):
    """Prompt/completion text pairs for verl's SFT trainer (``pad_mode=no_padding``), loss on the completion.

    Prompt and completion are tokenized separately (no special tokens added), exactly as generation continues
    a tokenized prompt; the completion ends with the tokenizer's eos token so the model learns to stop.
    """

    def __init__(self, parquet_files, tokenizer, config, processor=None, max_samples: int = -1):
        files = [parquet_files] if isinstance(parquet_files, str) else list(parquet_files)
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        if max_samples > 0:
            frame = frame.iloc[:max_samples]
        max_length = config.get("max_length", MAX_LENGTH)
        self.examples = []
        for prompt, completion in zip(frame["sft_prompt"], frame["sft_completion"], strict=True):
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            if len(prompt_ids) + len(completion_ids) > max_length:
                raise ValueError(f"an SFT example has {len(prompt_ids) + len(completion_ids)} > {max_length} tokens")
            self.examples.append((prompt_ids, completion_ids))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        prompt_ids, completion_ids = self.examples[index]
        input_ids = torch.tensor(prompt_ids + completion_ids, dtype=torch.long)
        loss_mask = torch.tensor([0] * len(prompt_ids) + [1] * len(completion_ids), dtype=torch.long)
        return {"input_ids": input_ids, "position_ids": torch.arange(len(input_ids)), "loss_mask": loss_mask}


# ---------------------------------------------------------------------------------------------- training
def sft_command(model_path: Path, train_file: Path, checkpoint_dir: Path, recipe: SFTRecipe, seed: int) -> list[str]:
    """The torchrun command line of one CPU warm start (one process: gloo FSDP across 2 cores only adds traffic)."""
    overrides = [
        f"model.path={model_path}",
        f"data.train_files={train_file}",
        "data.custom_cls.path=pkg://duet_verl.worlds.warm_start",  # not __name__: "__main__" under the CLI
        f"data.custom_cls.name={PromptCompletionSFTDataset.__name__}",
        "data.pad_mode=no_padding",
        f"data.train_batch_size={recipe.batch_size}",
        f"data.micro_batch_size_per_gpu={recipe.batch_size}",
        "data.use_dynamic_bsz=False",
        f"data.max_length={recipe.max_length}",
        "data.num_workers=0",
        "model.use_remove_padding=False",  # needs flash-attn
        "+model.override_config.attn_implementation=sdpa",
        "model.enable_gradient_checkpointing=False",  # tiny activations: recomputing them only costs time
        "engine.strategy=fsdp2",
        "engine.use_torch_compile=False",
        "engine.model_dtype=fp32",
        "+engine.mixed_precision.param_dtype=fp32",
        f"engine.seed={seed}",
        f"optim.lr={recipe.lr}",
        "optim.lr_scheduler_type=cosine",  # decaying to 0 sharpens the memorised answers for sampling at T=1
        "optim.lr_warmup_steps_ratio=0.05",
        "optim.weight_decay=0.0",  # the table is memorised in the weights; decay only slows that down
        f"trainer.total_epochs={recipe.epochs}",
        f"trainer.seed={seed}",
        "trainer.device=cpu",
        "trainer.logger=[console]",
        "trainer.project_name=duet_world",
        f"trainer.experiment_name={train_file.stem}",
        f"trainer.default_local_dir={checkpoint_dir}",
        "trainer.resume_mode=disable",
        "checkpoint.save_contents=[hf_model]",  # only the final HF folder: no optimizer state to write
    ]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    return [*launcher, "-m", "duet_verl.cpu.sft_trainer", *overrides]


def run_sft(
    model_path: Path, train_file: Path, out_dir: Path, recipe: SFTRecipe, seed: int, threads: int | None = None
) -> Path:
    """Fine-tune the model at ``model_path`` with verl's SFT trainer; the trained HF folder goes to ``out_dir``.

    ``threads`` caps torch's CPU threads (``OMP_NUM_THREADS``), for warm starts that run side by side.
    """
    checkpoint_dir = out_dir.with_name(out_dir.name + "_sft")
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    checkpoint_dir.mkdir(parents=True)
    env = {**os.environ, "VERL_PLATFORM": "cpu", "TOKENIZERS_PARALLELISM": "false"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    log_path = checkpoint_dir / "sft.log"
    with open(log_path, "w") as log:
        result = subprocess.run(
            sft_command(model_path, train_file, checkpoint_dir, recipe, seed), env=env, stdout=log, stderr=log
        )
    if result.returncode != 0:
        raise RuntimeError(f"verl's SFT trainer failed (exit {result.returncode}); see {log_path}")
    step = (checkpoint_dir / "latest_checkpointed_iteration.txt").read_text().strip()
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.move(checkpoint_dir / f"global_step_{step}" / "huggingface", out_dir)
    # verl's checkpoint manager labels every saved config bfloat16 (it builds the model with torch_dtype=bf16)
    # although the weights are fp32; relabel them, or a plain from_pretrained would load them in bf16.
    config_path = out_dir / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "dtype": "float32"}, indent=2))
    return out_dir


def warm_start(
    world_paths: dict, out_dir: str | Path, seed: int = 0, recipes: dict[str, SFTRecipe] = SFT_RECIPES
) -> dict[str, Path]:
    """Warm-start M ("large") and m ("small") of a world (``build_world``'s paths); return their HF folders.

    ``recipes`` names each model to train (default: M and m); models of one size start from the same random
    weights, so an ablation differs from its model only in its SFT set. Each folder (weights, config,
    generation config, tokenizer) loads as ``actor_rollout_ref.model.path``.
    Two trainings run side by side, each on half the CPU cores: models this small keep one core busy
    each, where one training alone gains little from a second core. Wall times go to
    ``<out_dir>/warm_start.json``.
    """
    from transformers import AutoTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(world_paths["tokenizer"]))
    threads = max(1, (os.cpu_count() or 2) // 2)
    seconds = {}

    def train(name: str, recipe: SFTRecipe) -> Path:
        init_seed = seed * 2 + (recipe.size == "small")
        initial = build_model(out / f"{name}_init", tokenizer, WORLD_MODEL_SPECS[recipe.size], seed=init_seed)
        start = time.monotonic()
        trained = run_sft(initial, Path(world_paths[recipe.train_set]), out / name, recipe, seed, threads)
        seconds[name] = round(time.monotonic() - start, 1)
        shutil.rmtree(initial)
        return trained

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(train, name, recipe) for name, recipe in recipes.items()}
        models = {name: future.result() for name, future in futures.items()}
    (out / "warm_start.json").write_text(json.dumps({"seed": seed, "wall_s": seconds}, indent=2))
    return models


# ---------------------------------------------------------------------------------------------- the cache
CACHE_VERSION = 1  # bump when the warm start's code changes what it trains (the SFT command, the initial weights)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def warm_start_key(world_paths: dict, name: str, recipe: SFTRecipe, seed: int) -> dict:
    """What a warm start is made of: its SFT set's rows, the tokenizer, the recipe, the architecture and the seeds.
    Two warm starts with the same key are the same training (verl's SFT on CPU makes them again bit for bit)."""
    frame = pd.read_parquet(world_paths[recipe.train_set])
    rows = json.dumps(frame.to_dict("records"), sort_keys=True).encode()
    tokenizer = _sha256(Path(world_paths["tokenizer"], "tokenizer.json").read_bytes())
    spec = asdict(WORLD_MODEL_SPECS[recipe.size])
    return {"name": name, "version": CACHE_VERSION, "recipe": asdict(recipe), "seed": seed, "spec": spec,
            "sft_rows": _sha256(rows), "tokenizer": tokenizer}  # fmt: skip


def _files(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): _sha256(f.read_bytes()) for f in sorted(folder.rglob("*")) if f.is_file()}


def cached_model(entry: Path, key: dict) -> Path | None:
    """The model of a cache entry made from ``key``, checked against its manifest (every file's sha256), or None
    (no entry, another key, or a file missing or changed: the entry is then made again, never trusted)."""
    manifest_path = entry / "manifest.json"
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    model = entry / "model"
    if manifest.get("key") != key or not model.is_dir() or _files(model) != manifest.get("files"):
        print(f"[warm start] {entry}: not what its manifest says (key or files); training it again", flush=True)
        return None
    return model


def cached_warm_start(
    world_paths: dict, cache: str | Path, seed: int = 0, recipes: dict[str, SFTRecipe] = SFT_RECIPES
) -> dict[str, Path]:
    """``warm_start``, built once per (world, recipe, seed): each model lives in ``cache/<name>-<key hash>/model``
    with a ``manifest.json`` of its key (``warm_start_key``) and file hashes, and is reused while both match; only
    the missing or changed ones are trained. Their wall times are in each entry's manifest."""
    cache = Path(cache)
    keys = {name: warm_start_key(world_paths, name, recipe, seed) for name, recipe in recipes.items()}
    entries = {name: cache / f"{name}-{_sha256(json.dumps(key, sort_keys=True).encode())[:16]}" for name, key in
               keys.items()}  # fmt: skip
    models = {name: cached_model(entries[name], keys[name]) for name in recipes}
    missing = {name: recipes[name] for name, model in models.items() if model is None}
    if missing:
        scratch = cache / f"scratch-{os.getpid()}"
        trained = warm_start(world_paths, scratch, seed, missing)
        seconds = json.loads((scratch / "warm_start.json").read_text())["wall_s"]
        for name, folder in trained.items():
            entry = entries[name]
            shutil.rmtree(entry, ignore_errors=True)
            entry.mkdir(parents=True)
            shutil.move(folder, entry / "model")
            manifest = {"key": keys[name], "wall_s": seconds[name], "files": _files(entry / "model")}
            (entry / "manifest.json").write_text(json.dumps(manifest, indent=2))  # last: an entry without it is redone
            models[name] = entry / "model"
        shutil.rmtree(scratch, ignore_errors=True)
    for name in recipes:
        if name not in missing:
            print(f"[warm start] reusing {entries[name]}", flush=True)
    return models


# ---------------------------------------------------------------------------------------------- measuring
def _generate(model, tokenizer, prompts: list[list[int]], temperature: float, max_new_tokens: int) -> list[list[int]]:
    """Completion ids per prompt (up to and including eos), batched with left padding."""
    width = max(map(len, prompts))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    # plain temperature sampling, as the hf rollout does with top_k=-1, top_p=1 (transformers defaults top_k to 50)
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
    with torch.no_grad():
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
            **(sampling if temperature > 0 else {"do_sample": False}),
        )
    completions = []
    for row in output[:, width:].tolist():
        end = row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
        completions.append(row[:end])
    return completions


def measure(world_dir: str | Path, models: dict, samples: int = 4, seed: int = 0, max_new_tokens: int = 128) -> dict:
    """M alone (sampled at temperature 1, ``samples`` per question), m guided by each M signal and m alone (greedy).

    Per split: ``large_acc``, ``large_len_mean`` and ``large_len_max`` (response tokens incl. eos, as DUET counts
    them), ``large_len_group_std`` (mean over questions of the std of the ``samples`` lengths),
    ``guided_small_acc`` (and ``_sampled``: at temperature 1, as m's GRPO rollouts sample), ``small_alone_acc``
    (m's baseline chat prompt) and ``small_empty_signal_acc`` (the paper prompt with an empty signal).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from duet_verl.core import extract_signal, render_small_prompt, score_answer
    from duet_verl.worlds.learning import WORLD_DATA_SOURCE, large_prompt, load_world

    torch.manual_seed(seed)
    world = load_world(world_dir)
    large_tok, small_tok = (AutoTokenizer.from_pretrained(str(models[k])) for k in ("large", "small"))
    large, small = (
        AutoModelForCausalLM.from_pretrained(str(models[k]), dtype=torch.float32).eval() for k in ("large", "small")
    )  # fp32, as the CPU backend's hf rollout runs them

    def accuracy(texts: list[str], answers: list[int]) -> float:
        scores = [score_answer(WORLD_DATA_SOURCE, t, str(a)).score for t, a in zip(texts, answers, strict=True)]
        return sum(scores) / len(scores)

    def small_answers(prompts: list[list[int]], temperature: float = 0.0) -> list[str]:
        completions = _generate(small, small_tok, prompts, temperature, 16)
        return small_tok.batch_decode(completions, skip_special_tokens=True)

    report = {}
    for split in ("train", "test"):
        questions = world.questions(split)
        answers = [value for _, _, value in questions for _ in range(samples)]
        prompts = [
            large_tok(large_prompt(large_tok, q), add_special_tokens=False)["input_ids"] for q, _, _ in questions
        ]
        responses = _generate(large, large_tok, [p for p in prompts for _ in range(samples)], 1.0, max_new_tokens)
        texts = large_tok.batch_decode(responses, skip_special_tokens=True)
        lengths = torch.tensor([len(r) for r in responses], dtype=torch.float).view(len(questions), samples)
        guided = [
            render_small_prompt(small_tok, "paper", questions[i // samples][0], extract_signal(t).text).token_ids
            for i, t in enumerate(texts)
        ]
        alone = [render_small_prompt(small_tok, "baseline", q, None).token_ids for q, _, _ in questions]
        empty = [render_small_prompt(small_tok, "paper", q, "").token_ids for q, _, _ in questions]
        values = [value for _, _, value in questions]
        report[split] = {
            "questions": len(questions),
            "large_acc": accuracy(texts, answers),
            "large_len_mean": lengths.mean().item(),
            "large_len_group_std": lengths.std(dim=1, unbiased=False).mean().item(),
            "large_len_max": int(lengths.max().item()),
            "guided_small_acc": accuracy(small_answers(guided), answers),
            "guided_small_acc_sampled": accuracy(small_answers(guided, 1.0), answers),
            "small_alone_acc": accuracy(small_answers(alone), values),
            "small_empty_signal_acc": accuracy(small_answers(empty), values),
            "example_large_response": texts[0],
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="a folder written by python -m duet_verl.worlds.learning")
    parser.add_argument("--out", required=True, help="folder for the warm-started models (large/, small/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measure", action="store_true", help="also measure accuracies and lengths (about 1 min)")
    args = parser.parse_args()
    from duet_verl.worlds.learning import world_paths

    models = warm_start(world_paths(args.world), args.out, args.seed)
    result = {"models": {k: str(v) for k, v in models.items()}}
    result.update(json.loads((Path(args.out) / "warm_start.json").read_text()))
    if args.measure:
        result["measure"] = measure(args.world, models, seed=args.seed)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
