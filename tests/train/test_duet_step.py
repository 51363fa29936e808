"""``DuetTrainer._duet_step`` in process, on every combination of the ``duet.*`` choices and KL modes, in seconds.

The trainer is the real one, built on the real composed config and its per-model views; only what lives in Ray
is replaced: each model's agent loop answers from a script (M writes signals of known lengths, m is right exactly
when the signal it reads holds the key, and alone only on the first question), its worker group computes log-probs
as constants and records what ``update_actor`` receives, and its checkpoint manager records the wake/sleep order.
The asserts recompute the step from the script: DUET's rewards, GRPO advantages per group, which M row each m
answer read, who was updated, and that only one engine is awake at a time.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import open_dict
from tensordict import TensorDict
from verl import DataProto
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.utils import need_reference_policy
from verl.utils import tensordict_utils as tu

from duet_verl.core import LambdaSchedule, ResponseDecoder, extract_signal
from duet_verl.core.records import ANSWER_FIELDS, TRAINING_FIELDS
from duet_verl.train.duet_config import LARGE, SMALL, DuetConfig
from duet_verl.train.model_views import build_model_views
from duet_verl.train.trainer import DuetTrainer
from duet_verl.train.verl_adapter import ModelRole

QUESTIONS, N, K = 3, 2, 2
PROMPT_LEN, LARGE_LEN, SMALL_LEN = 48, 32, 8  # no response is cut: the longest of M is 26 tokens
KEY = "key"
OLD_LOG_PROB, REF_LOG_PROB = -0.5, -0.7  # per token: M's KL against its reference is 0.2 on every token
# M's responses, by position in the step's batch: a signal with the key or without, of different lengths
LARGE_TEXTS = (
    "<think>\nthe key is here\n</think>\n\nok",
    "<think>\n\n</think>\n\nok",  # an empty thinking block: m reads nothing
    "<think>\nsome words and the key\n</think>\n\nok",
    "<think>\nnothing useful at all here\n</think>\n\nok",
    "<think>\nkey\n</think>\n\nok",
    "<think>\ncut off while thinking about the key",  # never closed
)


def small_is_right(question: str, signal: str | None) -> bool:
    """The script m follows: with a signal, right iff it holds the key; alone, right on the first question."""
    return KEY in signal if signal is not None else question == "question 0"


class Events(list):
    """What happened, in order: engine wake-ups and sleeps, generations, updates."""


class ScriptedAgentLoop:
    """Stands in for verl's AgentLoopManager: the rows it is given, answered from the script, in verl's layout."""

    def __init__(self, name: str, tokenizer, events: Events, response_len: int):
        self.name, self.tokenizer, self.events, self.response_len = name, tokenizer, events, response_len
        self.batches: list[DataProto] = []

    def generate_sequences(self, batch: DataProto) -> DataProto:
        self.events.append(f"generate {self.name}")
        self.batches.append(batch)
        nt = batch.non_tensor_batch
        rows = len(batch)
        prompts = [self._encode(str(nt["raw_prompt"][i][-1]["content"]))[-PROMPT_LEN:] for i in range(rows)]
        if self.name == LARGE:
            texts = [LARGE_TEXTS[i % len(LARGE_TEXTS)] for i in range(rows)]
        else:
            texts = [
                "\\boxed{1}" if small_is_right(str(nt["question"][i]), nt["signal"][i]) else "\\boxed{0}"
                for i in range(rows)
            ]
        responses = [(self._encode(text) + [self.tokenizer.eos_token_id])[: self.response_len] for text in texts]
        output = self._layout(prompts, responses)
        if self.name == SMALL:
            scores = torch.zeros(rows, self.response_len)
            for i, (text, response) in enumerate(zip(texts, responses, strict=True)):
                scores[i, len(response) - 1] = float(text == "\\boxed{1}")
            output.batch["rm_scores"] = scores
        return output

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _layout(self, prompts: list[list[int]], responses: list[list[int]]) -> DataProto:
        """Prompts left-padded, responses right-padded, as verl's agent loop returns them."""
        pad = self.tokenizer.pad_token_id
        prompt_ids = torch.tensor([[pad] * (PROMPT_LEN - len(p)) + p for p in prompts])
        response_ids = torch.tensor([r + [pad] * (self.response_len - len(r)) for r in responses])
        prompt_mask = torch.tensor([[0] * (PROMPT_LEN - len(p)) + [1] * len(p) for p in prompts])
        response_mask = torch.tensor([[1] * len(r) + [0] * (self.response_len - len(r)) for r in responses])
        attention_mask = torch.cat([prompt_mask, response_mask], dim=1)
        return DataProto.from_single_dict({
            "prompts": prompt_ids,
            "responses": response_ids,
            "response_mask": response_mask,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": attention_mask,
            "position_ids": (attention_mask.cumsum(-1) - 1).clamp(min=0),
        })  # fmt: skip


INFER_MFU = 0.25  # what the workers report for their log-prob pass


class ConstantWorkers:
    """Stands in for a model's worker group: constant log-probs, and ``update_actor`` records its batch."""

    world_size = 2  # two data-parallel ranks: verl's balancer reorders the rows between them

    def __init__(self, name: str, events: Events):
        self.name, self.events, self.updates = name, events, []
        self._dispatch_info = {"actor": [0, 1]}

    @staticmethod
    def _per_token(batch_td: TensorDict, value: float) -> TensorDict:
        tokens = batch_td["input_ids"]
        values = torch.full(tokens.values().shape, value)
        nested = torch.nested.nested_tensor_from_jagged(values, offsets=tokens.offsets())
        return tu.get_tensordict({"log_probs": nested, "entropy": nested.clone()}, {"metrics": {"mfu": INFER_MFU}})

    def compute_log_prob(self, batch_td: TensorDict) -> TensorDict:
        return self._per_token(batch_td, OLD_LOG_PROB)

    def compute_ref_log_prob(self, batch_td: TensorDict) -> TensorDict:
        self.events.append(f"reference {self.name}")
        return self._per_token(batch_td, REF_LOG_PROB)

    def update_actor(self, batch_td: TensorDict) -> TensorDict:
        self.events.append(f"update {self.name}")
        self.updates.append(batch_td)
        return tu.get_tensordict({"dummy": torch.zeros(1)}, {"metrics": {"mfu": 0.0, "pg_loss": [0.0]}})


class RecordingEngines:
    """Stands in for a model's checkpoint-engine manager: weight syncs wake its engine, sleeps are recorded."""

    def __init__(self, name: str, events: Events):
        self.name, self.events = name, events

    def update_weights(self, global_steps: int) -> None:
        self.events.append(f"wake {self.name}")

    def sleep_replicas(self) -> None:
        self.events.append(f"sleep {self.name}")


def compose_config(*overrides: str):
    base = [
        "data.max_prompt_length=48",
        f"data.max_response_length={LARGE_LEN}",
        f"data.train_batch_size={QUESTIONS}",
        "actor_rollout_ref.model.path=/models/large",
        "actor_rollout_ref.rollout.name=hf",
        f"actor_rollout_ref.rollout.n={N}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={QUESTIONS}",
        "actor_rollout_ref.rollout.agent.num_workers=2",  # an odd batch: the trainer pads it for the workers
        "small_actor_rollout_ref.model.path=/models/small",
        f"small_actor_rollout_ref.actor.ppo_mini_batch_size={QUESTIONS}",
        f"small_actor_rollout_ref.rollout.response_length={SMALL_LEN}",
        "small_actor_rollout_ref.rollout.agent.num_workers=2",
        f"duet.small_rollouts_per_signal={K}",
        "duet.length_bound=10",
        "duet.lambda_init=0.5",
        "trainer.n_gpus_per_node=1",
    ]
    with initialize_config_module(config_module="duet_verl.config", version_base=None):
        return compose(config_name="duet_trainer", overrides=[*base, *overrides])


@functools.cache
def composed(*overrides: str):
    """The composed config and its per-model views (composing takes most of a case's time: once per KL mode)."""
    config = compose_config(*overrides)
    return config, build_model_views(config, DuetConfig.from_config(config))


def scripted_trainer(tokenizer, kl: str = "in_reward", **choices) -> tuple[DuetTrainer, Events]:
    """A DuetTrainer on the real config (``KL_MODES[kl]``, then ``duet.*`` ``choices``: none of them changes the
    per-model views) with the scripted models in place of its Ray handles."""
    config, views = composed(*KL_MODES[kl])
    views = {name: copy.deepcopy(view) for name, view in views.items()}
    duet = dataclasses.replace(DuetConfig.from_config(config), **choices)
    events = Events()
    trainer = DuetTrainer.__new__(DuetTrainer)
    trainer.config, trainer.duet = views[LARGE], duet
    trainer.tokenizer = trainer.small_tokenizer = tokenizer
    trainer.use_reference_policy = need_reference_policy(trainer.config)
    trainer.ref_in_actor = False
    if trainer.config.algorithm.use_kl_in_reward:
        trainer.kl_ctrl_in_reward = core_algos.get_kl_controller(trainer.config.algorithm.kl_ctrl)
    trainer.lambda_schedule = LambdaSchedule.from_config(duet)
    trainer.large_decoder = ResponseDecoder(tokenizer, (duet.think_start, duet.think_end))
    trainer.think_end_id = trainer.large_decoder.end_id
    trainer._awake, trainer.global_steps = None, 1
    for name, response_len in ((LARGE, LARGE_LEN), (SMALL, SMALL_LEN)):
        role = ModelRole(name, views[name], actor_rollout_wg=ConstantWorkers(name, events))
        role.agent_loop = ScriptedAgentLoop(name, tokenizer, events, response_len)
        role.checkpoint_manager = RecordingEngines(name, events)
        setattr(trainer, name, role)
    trainer.actor_rollout_wg = trainer.large.actor_rollout_wg
    return trainer, events


def batch_dict() -> dict:
    """A step's questions as verl's RL dataset collates them."""
    rows = [
        {
            "raw_prompt": [{"role": "user", "content": f"question {q} Let's think step by step."}],
            "data_source": "tiny_math",
            "reward_model": {"style": "rule", "ground_truth": "1"},
            "extra_info": {"question": f"question {q}", "index": q},
        }
        for q in range(QUESTIONS)
    ]
    # one object per row (the trailing None keeps numpy from turning lists of messages into a 2-D array)
    out = {key: np.array([row[key] for row in rows] + [None], dtype=object)[:-1] for key in rows[0]}
    out["dummy_tensor"] = torch.zeros(QUESTIONS, 1, dtype=torch.uint8)
    return out


def grpo(scores: np.ndarray, groups: list) -> np.ndarray:
    """verl's GRPO advantage of each score within its group: (score − mean) / (std + 1e-6), 0 alone."""
    out = np.zeros(len(scores))
    for group in set(groups):
        members = [i for i, g in enumerate(groups) if g == group]
        values = torch.tensor(scores[members], dtype=torch.float32)
        if len(members) > 1:
            out[members] = ((values - values.mean()) / (values.std() + 1e-6)).numpy()
    return out


CHOICES = list(
    itertools.product(
        ("off", "per_signal", "per_prompt"),  # duet.marginal_utility
        ("question", "signal"),  # duet.small_grouping
        ("response", "thinking"),  # duet.length_measure
        ("paper", "chat_think"),  # duet.small_prompt_template
        (True, False),  # duet.train_small
    )
)
KL_MODES = {
    "in_reward": ["algorithm.use_kl_in_reward=true"],
    "in_loss": ["algorithm.use_kl_in_reward=false", "actor_rollout_ref.actor.use_kl_loss=true"],
    "none": ["algorithm.use_kl_in_reward=false", "actor_rollout_ref.actor.use_kl_loss=false"],
}


@pytest.mark.parametrize("kl", list(KL_MODES))
@pytest.mark.parametrize(("marginal", "grouping", "measure", "template", "train_small"), CHOICES)
def test_one_step_follows_the_method(tiny_tokenizer, marginal, grouping, measure, template, train_small, kl):
    trainer, events = scripted_trainer(
        tiny_tokenizer, kl, marginal_utility=marginal, small_grouping=grouping, length_measure=measure,
        small_prompt_template=template, train_small=train_small,
    )  # fmt: skip
    metrics, timing = {}, {}
    trainer._duet_step(batch_dict(), metrics, timing)
    large_calls = trainer.large.agent_loop.batches
    guided_rows = trainer.small.agent_loop.batches[0]
    large_batch = trainer.large.actor_rollout_wg.updates[0]  # rows reordered by verl's balancer: found by their ids

    # --- the order: one engine awake at a time, m updated before M, M's reference read only when a KL needs it
    baseline_gen = ["generate small"] if marginal != "off" else []
    reference = ["reference large"] if kl != "none" else []
    updates = (["update small"] if train_small else []) + ["update large"]
    assert list(events) == [
        "wake large", "generate large", "sleep large", "wake small", "generate small", *baseline_gen, "sleep small",
        *reference, *updates,
    ]  # fmt: skip
    assert len(large_calls) == 1 and len(large_calls[0]) % 2 == 0, "M's batch is padded for its 2 agent workers"

    # --- which M response each m answer read: the row ids, never the position
    rows = QUESTIONS * N
    large_texts = [LARGE_TEXTS[i % len(LARGE_TEXTS)] for i in range(rows)]
    signals = [text.split("<think>\n", 1)[1].split("\n</think>", 1)[0] for text in large_texts]
    parents = guided_rows.non_tensor_batch["large_row"].astype(int)
    assert sorted(parents.tolist()) == sorted(list(range(rows)) * K)
    assert [guided_rows.non_tensor_batch["signal"][j] for j in range(len(parents))] == [signals[i] for i in parents]
    assert set(guided_rows.non_tensor_batch["template"]) == {template}
    questions = [f"question {i // N}" for i in range(rows)]
    assert list(guided_rows.non_tensor_batch["question"]) == [questions[i] for i in parents]

    # --- DUET's rewards at this step's λ (0.5): r_Mm − r_m − λ·L/B on M's last response token
    r_mm = np.array([float(small_is_right(questions[i], signals[i])) for i in range(rows)])
    alone = np.array([float(small_is_right(q, None)) for q in questions])
    r_m = np.zeros(rows) if marginal == "off" else alone  # per_prompt: the question's, per_signal: the row's
    encoded = [tiny_tokenizer.encode(t, add_special_tokens=False) + [tiny_tokenizer.eos_token_id] for t in large_texts]
    think_end = tiny_tokenizer.convert_tokens_to_ids("</think>")
    thinking = [ids.index(think_end) + 1 if think_end in ids else len(ids) for ids in encoded]
    lengths = np.array([len(ids) for ids in encoded] if measure == "response" else thinking, dtype=float)
    expected = r_mm - r_m - 0.5 * lengths / 10
    order = [int(i) for i in tu.get(large_batch, "large_row")]
    np.testing.assert_allclose(large_batch["token_level_scores"].sum(-1).numpy(), expected[order], atol=1e-6)
    assert metrics["duet/lambda"] == pytest.approx(0.5)
    assert metrics["duet/r_Mm"] == pytest.approx(r_mm.mean())
    assert metrics["duet/reward_large_mean"] == pytest.approx(expected.mean(), abs=1e-6)
    assert metrics["duet/penalised_length_mean"] == pytest.approx(lengths.mean())
    if marginal != "off":
        assert metrics["duet/r_m"] == pytest.approx(r_m.mean())
    # the collapse watch: M responses with an empty signal, and m's accuracy on them
    assert metrics["duet/signal_empty_fraction"] == pytest.approx(np.mean([s == "" for s in signals]))
    assert metrics["duet/small_accuracy_empty_signal"] == 0.0  # nothing to read: m never finds the key
    # --- verl's perf metrics, per model: MFU of the log-prob pass, tokens (prompt + response) for the throughput
    assert metrics["large/perf/mfu/actor_infer"] == metrics["small/perf/mfu/actor_infer"] == INFER_MFU
    assert metrics["large/perf/total_num_tokens"] == int(large_batch["attention_mask"].sum())
    assert metrics["small/perf/total_num_tokens"] > 0
    # verl's per-token timings per model (ms): generation over response tokens, update over prompt + response
    response_tokens = int(large_batch["response_mask"].sum())
    assert metrics["large/timing_per_token_ms/gen"] == pytest.approx(timing["gen_large"] * 1000 / response_tokens)
    assert metrics["large/timing_per_token_ms/update_actor"] == pytest.approx(
        timing["update_large"] * 1000 / metrics["large/perf/total_num_tokens"]
    )
    assert ("large/timing_per_token_ms/ref" in metrics) == (kl != "none")
    assert ("small/timing_per_token_ms/update_actor" in metrics) == train_small
    assert trainer.lambda_schedule.value == pytest.approx(min(max(0.5 + 0.01 * (lengths.mean() / 10 - 1), 0), 1))

    # --- GRPO advantages, as the update receives them: M per question; m per question or per signal
    advantages = _row_values(large_batch, "advantages")
    large_groups = [questions[i] for i in order]
    rewards = expected[order]
    if kl == "in_reward":  # a KL-controlled penalty β·KL on every response token, summed into the return
        kl_per_token = OLD_LOG_PROB - REF_LOG_PROB
        response_tokens = np.array([len(encoded[i]) for i in order])
        rewards = rewards - 0.001 * kl_per_token * response_tokens
    np.testing.assert_allclose(advantages, grpo(rewards, large_groups), atol=1e-4)
    assert ("ref_log_prob" in large_batch.keys()) == (kl != "none")
    if train_small:
        small_batch = trainer.small.actor_rollout_wg.updates[0]
        small_parents = [int(i) for i in tu.get(small_batch, "large_row")]
        small_scores = np.array([float(small_is_right(questions[i], signals[i])) for i in small_parents])
        small_groups = [questions[i] if grouping == "question" else (questions[i], i) for i in small_parents]
        np.testing.assert_allclose(_row_values(small_batch, "advantages"), grpo(small_scores, small_groups), atol=1e-4)
        assert "ref_log_prob" not in small_batch.keys(), "m has no reference model"
    else:
        assert trainer.small.actor_rollout_wg.updates == []


def _row_values(batch_td: TensorDict, key: str) -> np.ndarray:
    """A per-token tensor of the update batch (nested, one entry per response token) as one value per row: GRPO
    gives every token of a response the same advantage."""
    tensor = batch_td[key]
    rows = tensor.unbind() if tensor.is_nested else list(tensor)
    mask = batch_td["response_mask"]
    masks = mask.unbind() if mask.is_nested else list(mask)
    values = []
    for row, row_mask in zip(rows, masks, strict=True):
        valid = row[row_mask.bool()] if row.shape == row_mask.shape else row
        assert torch.allclose(valid, valid[0].expand_as(valid), atol=1e-5), "one advantage per response"
        values.append(float(valid[0]))
    return np.array(values)


def test_the_scripted_world_has_both_outcomes():
    """The script must give GRPO something to compare: right and wrong m answers, signals with and without the
    key, short and long responses (else the advantage asserts above would compare zeros)."""
    signals = [t.split("<think>\n", 1)[1].split("\n</think>", 1)[0] for t in LARGE_TEXTS[: QUESTIONS * N]]
    outcomes = {small_is_right(f"question {i // N}", s) for i, s in enumerate(signals)}
    assert outcomes == {True, False} and len({len(t) for t in LARGE_TEXTS}) == len(LARGE_TEXTS)


def test_the_training_dump_has_one_record_per_m_answer(tiny_tokenizer, tmp_path):
    """``trainer.rollout_data_dir``: the answer-record fields every writer shares, plus the training ones."""
    trainer, _ = scripted_trainer(tiny_tokenizer, "none")
    with open_dict(trainer.config):
        trainer.config.trainer.rollout_data_dir = str(tmp_path)
    trainer._duet_step(batch_dict(), {}, {})
    records = [json.loads(line) for line in (tmp_path / "duet_step_1.jsonl").read_text().splitlines()]
    assert len(records) == QUESTIONS * N * K
    assert all(set(r) == set(ANSWER_FIELDS) | set(TRAINING_FIELDS) for r in records)
    for record in records:
        assert record["correct"] == float(small_is_right(record["question"], record["signal"]))
        found = extract_signal(record["large_text"])
        assert (record["signal"], record["signal_case"]) == (found.text, found.case.value)
        assert 0 < record["large_thinking_tokens"] <= record["large_tokens"] and record["small_tokens"] > 0


def test_validation_metrics_average_each_source_over_its_answers():
    """Two M responses with two m answers each (and one from another source): the per-source means of the
    answer records, which equal the means over M responses since each has the same number of answers."""
    rows = [("math", 1.0, 10, 4, 3, "a"), ("math", 0.0, 10, 4, 5, "a"), ("math", 1.0, 30, 8, 3, ""),
            ("math", 0.0, 30, 8, 1, ""), ("gpqa", 0.0, 20, 6, 2, "b")]  # fmt: skip
    fields = ("data_source", "correct", "large_tokens", "large_thinking_tokens", "small_tokens", "signal")
    metrics = DuetTrainer._validation_metrics([dict(zip(fields, row, strict=True)) for row in rows], response_cap=30)
    assert metrics["val-duet/math/acc"] == pytest.approx(0.5)
    assert metrics["val-duet/math/large_tokens"] == pytest.approx(20.0)
    assert metrics["val-duet/math/large_thinking_tokens"] == pytest.approx(6.0)
    assert metrics["val-duet/math/small_tokens"] == pytest.approx(3.0)
    assert metrics["val-duet/math/intelligence_per_1k_tokens"] == pytest.approx(0.5 / 0.02)
    assert metrics["val-duet/gpqa/acc"] == 0.0 and metrics["val-duet/gpqa/large_tokens"] == 20.0
    # the second M response's signal was empty: half the answers, right once in two
    assert metrics["val-duet/math/signal_empty_fraction"] == 0.5 and metrics["val-duet/math/acc_empty_signal"] == 0.5
    assert metrics["val-duet/gpqa/signal_empty_fraction"] == 0.0 and "val-duet/gpqa/acc_empty_signal" not in metrics
    # M's responses that reached the response cap (30 tokens): the second of the two math ones
    assert metrics["val-duet/math/large_cut_fraction"] == 0.5 and metrics["val-duet/gpqa/large_cut_fraction"] == 0.0
