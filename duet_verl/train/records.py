"""What a DUET step leaves behind besides updated weights: its ``duet/*`` metrics, verl's ``perf/`` throughput,
the training dump (``trainer.rollout_data_dir``) and the validation generations (``trainer.validation_data_dir``),
as a mixin of ``DuetTrainer``. Records share one schema with ``evaluate`` (``duet_verl.core.records``)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from verl import DataProto

from duet_verl.core import DuetRewards
from duet_verl.train.duet_config import LARGE, SMALL


@dataclass(frozen=True)
class StepRewards:
    """What one step's reward phase computed: M's rewards, the λ they used and the lengths behind them."""

    rewards: DuetRewards
    lam: float
    lengths: np.ndarray  # per M response, as ``duet.length_measure`` counts them (the penalised length)
    thinking_lengths: np.ndarray  # per M response, up to and including ``</think>`` (a metric either way)


# val-duet/<source>/<name>: the answer-record field each validation metric averages
VALIDATION_METRICS = {
    "acc": "correct",
    "large_tokens": "large_tokens",
    "large_thinking_tokens": "large_thinking_tokens",
    "small_tokens": "small_tokens",
}


class StepRecords:
    """The trainer's metrics and JSONL records (it provides ``config``, ``global_steps``, ``small_tokenizer`` and
    ``_small_texts``)."""

    def _duet_metrics(self, large_batch, small_batch, signals, step_rewards: StepRewards) -> dict[str, float]:
        """The step's ``duet/*`` metrics (docs/training.md, "Metrics"); the paper's symbols stay in their names."""
        rewards, lengths = step_rewards.rewards, step_rewards.lengths
        large_tokens = large_batch.batch["response_mask"].sum(-1).float()
        max_tokens = large_batch.batch["responses"].shape[-1]
        cut = np.array([c or 0 for c in small_batch.non_tensor_batch.get("signal_tokens_cut", [0] * len(small_batch))])
        metrics = {
            "duet/lambda": step_rewards.lam,
            "duet/r_Mm": float(np.mean(rewards.guided_accuracy)),
            "duet/reward_large_mean": float(np.mean(rewards.large_reward)),
            "duet/length_penalty_mean": float(np.mean(rewards.length_penalty)),
            "duet/penalised_length_mean": float(lengths.mean()),
            "duet/large_response_length_mean": float(large_tokens.mean()),
            "duet/large_response_length_max": float(large_tokens.max()),
            "duet/large_thinking_length_mean": float(np.mean(step_rewards.thinking_lengths)),
            "duet/small_response_length_mean": float(small_batch.batch["response_mask"].sum(-1).float().mean()),
            "duet/small_accuracy": float(small_batch.batch["rm_scores"].sum(-1).mean()),
            "duet/large_truncated_fraction": float((large_tokens >= max_tokens).float().mean()),
            "duet/large_no_think_end_fraction": float(np.mean([not s.closed for s in signals])),
            "duet/signal_shortened_fraction": float(np.mean(cut > 0)),
            "duet/signal_empty_fraction": float(np.mean([s.empty for s in signals])),
        }
        if rewards.baseline_accuracy is not None:
            metrics["duet/r_m"] = float(np.mean(rewards.baseline_accuracy))
        read_empty = np.array([signals[i].empty for i in small_batch.non_tensor_batch["large_row"].astype(np.int64)])
        if read_empty.any():  # m's accuracy on empty signals: logged only when there were some
            scores = small_batch.batch["rm_scores"].sum(-1).numpy()
            metrics["duet/small_accuracy_empty_signal"] = float(scores[read_empty].mean())
        return metrics

    def _dump_samples(self, large_batch, small_batch, signals, step_rewards: StepRewards) -> None:
        """With ``trainer.rollout_data_dir`` set, write every m answer with the M response it read (JSONL, the
        answer-record fields of ``core.records`` plus ``TRAINING_FIELDS``)."""
        out_dir = self.config.trainer.get("rollout_data_dir")
        if not out_dir:
            return
        rewards, lengths = step_rewards.rewards, step_rewards.lengths
        baseline = rewards.baseline_accuracy
        decode = self.small_tokenizer.decode
        path = Path(out_dir) / f"duet_step_{self.global_steps}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        records = self._answer_records(large_batch, small_batch, signals, step_rewards.thinking_lengths)
        with path.open("w") as f:
            for j, record in enumerate(records):
                i = int(small_batch.non_tensor_batch["large_row"][j])
                prompt_ids = small_batch.batch["prompts"][j][
                    small_batch.batch["attention_mask"][j][: small_batch.batch["prompts"].shape[-1]].bool()
                ]
                record.update({
                    "step": self.global_steps,
                    "lambda": step_rewards.lam,
                    "large_row": i,
                    "penalised_length": float(lengths[i]),
                    "small_prompt": decode(prompt_ids.tolist(), skip_special_tokens=False),
                    "baseline_correct": None if baseline is None else float(baseline[i]),
                    "reward_large": float(rewards.large_reward[i]),
                })  # fmt: skip
                f.write(json.dumps(record) + "\n")

    def _answer_records(
        self, large_batch: DataProto, small_batch: DataProto, signals, thinking: np.ndarray
    ) -> list[dict]:
        """One record per m answer with the fields every writer shares (``core.records.ANSWER_FIELDS``)."""
        parents = small_batch.non_tensor_batch["large_row"].astype(np.int64)
        large_tokens = large_batch.batch["response_mask"].sum(-1).tolist()
        small_tokens = small_batch.batch["response_mask"].sum(-1).tolist()
        scores = small_batch.batch["rm_scores"].sum(-1).tolist()
        small_texts = self._small_texts(small_batch)
        return [
            {
                "data_source": str(small_batch.non_tensor_batch["data_source"][j]),
                "question": str(small_batch.non_tensor_batch["question"][j]),
                "ground_truth": str(small_batch.non_tensor_batch["reward_model"][j]["ground_truth"]),
                "large_text": large_batch.non_tensor_batch["response_text"][i],
                "signal": signals[i].text,
                "signal_case": signals[i].case.value,
                "small_text": small_texts[j],
                "correct": float(scores[j]),
                "large_tokens": int(large_tokens[i]),
                "large_thinking_tokens": int(thinking[i]),
                "small_tokens": int(small_tokens[j]),
            }
            for j, i in enumerate(parents)
        ]

    def _throughput(self, metrics: dict, step_seconds: float) -> dict[str, float]:
        """verl's ``perf/`` throughput (tokens per second per GPU, prompt + response) for each model and both; the
        two models share the GPUs, so each one's figure is over the whole step."""
        gpus = self.config.trainer.n_gpus_per_node * self.config.trainer.nnodes
        tokens = {name: metrics.get(f"{name}/perf/total_num_tokens", 0) for name in (LARGE, SMALL)}
        out = {f"{name}/perf/throughput": count / (step_seconds * gpus) for name, count in tokens.items()}
        out["perf/throughput"] = sum(tokens.values()) / (step_seconds * gpus)
        out["perf/time_per_step"] = step_seconds
        return out

    @staticmethod
    def _validation_metrics(records: list[dict], response_cap: int) -> dict[str, float]:
        """``val-duet/<source>/*`` from the validation records. Every M response has the same number of m answers,
        so a mean over the answers is the mean over M responses. ``large_cut_fraction``: M's responses that reached
        ``response_cap`` (training's response length, which validation keeps: ``evaluate`` and the paper give M
        16384 tokens, so where this is not ~0 validation understates the evaluation's accuracy)."""
        by_source: dict[str, list[dict]] = defaultdict(list)
        for record in records:
            by_source[record["data_source"]].append(record)
        metrics: dict[str, float] = {}
        for source, rows in by_source.items():
            means = {name: float(np.mean([r[field] for r in rows])) for name, field in VALIDATION_METRICS.items()}
            metrics.update({f"val-duet/{source}/{name}": value for name, value in means.items()})
            metrics[f"val-duet/{source}/intelligence_per_1k_tokens"] = means["acc"] / max(
                means["large_tokens"] / 1000, 1e-9
            )
            metrics[f"val-duet/{source}/large_cut_fraction"] = float(np.mean([r["large_tokens"] >= response_cap
                                                                             for r in rows]))  # fmt: skip
            empty = [r["correct"] for r in rows if not r["signal"]]
            metrics[f"val-duet/{source}/signal_empty_fraction"] = len(empty) / len(rows)
            if empty:
                metrics[f"val-duet/{source}/acc_empty_signal"] = float(np.mean(empty))
        return metrics

    def _write_validation_generations(self, records: list[dict]) -> None:
        """``trainer.validation_data_dir/val_step_N.jsonl`` (one line per m answer) and verl's tracker table."""
        self._maybe_log_val_generations(
            inputs=[r["question"] for r in records],
            outputs=[f"[M signal] {r['signal']}\n[m answer] {r['small_text']}" for r in records],
            scores=[r["correct"] for r in records],
        )
        out_dir = self.config.trainer.get("validation_data_dir")
        if not out_dir:
            return
        path = Path(out_dir) / f"val_step_{self.global_steps}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as f:
            f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        print(f"[duet] wrote {len(records)} validation generations to {path}", flush=True)
