"""The ``hf`` rollout: verl's server-mode rollout backed by transformers ``generate()`` on the CPU.

verl 0.9 only generates through rollout *servers* (vLLM, SGLang, TRT-LLM) that the agent loop calls
token-in/token-out. This backend keeps that shape so the real agent loop, load balancer and weight-sync
path run unchanged:

- ``HFRolloutServer``: a Ray actor holding one transformers model. ``generate`` honours temperature,
  top_p, top_k and max_tokens and returns per-token log-probs. Concurrent requests with the same sampling
  settings are served together: one left-padded ``generate()`` for up to ``rollout.max_num_seqs`` prompts (the
  agent loop sends a whole batch at once; one call per prompt left the CPU idle between tiny matmuls).
  ``load_weights``/``finish_weight_update`` receive the trainer's weights on every sync and refuse an incomplete one.
- ``HFReplica``: the ``RolloutReplica`` that launches one server per replica, named with the model's tag
  (``duet_verl.rollout.naming``) so two models can have servers in one job.
- ``HFServerAdapter``: the ``BaseRollout`` inside each training worker; wakes/sleeps its server and streams
  the actor's weights to it in buckets.

Select it with ``actor_rollout_ref.rollout.name=hf`` (any platform; it is the rollout the CPU platform uses).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ray
import torch
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.config import HFModelConfig, RolloutConfig
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutMode, RolloutReplica, TokenOutput

from duet_verl.rollout.naming import server_actor_name

logger = logging.getLogger(__name__)


def _max_new_tokens(config: RolloutConfig, prompt_len: int, sampling_params: dict[str, Any]) -> int:
    """vLLM's rule: an explicit max_tokens, else the response length, capped by the context left."""
    max_model_len = config.max_model_len or config.prompt_length + config.response_length
    room = max_model_len - prompt_len
    if room < 1:
        raise ValueError(
            f"prompt of {prompt_len} tokens leaves no room to generate within max_model_len={max_model_len} "
            "(rollout.max_model_len, or rollout.prompt_length + rollout.response_length)"
        )
    requested = sampling_params.get("max_tokens", sampling_params.get("max_new_tokens"))
    if requested is None:
        requested = min(config.response_length, config.prompt_length + config.response_length - prompt_len)
    return max(1, min(int(requested), room))


@dataclass
class _Request:
    prompt_ids: list[int]
    sampling_params: dict[str, Any]
    result: asyncio.Future


def _sampling_key(sampling_params: dict[str, Any]) -> str:
    """Requests with the same key can share one ``generate()``; the token budget is applied per row."""
    shared = {k: v for k, v in sampling_params.items() if k not in ("max_tokens", "max_new_tokens")}
    return json.dumps(shared, sort_keys=True, default=str)


class HFRolloutServer:
    """One transformers model serving token-in/token-out generation to verl's agent loop.

    Sleeping frees nothing on the CPU (there is no KV cache to drop), but the server tracks whether it is
    awake and refuses to generate while asleep, so a trainer that forgets to wake a model fails loudly.
    """

    def __init__(self, config: RolloutConfig, model_config: HFModelConfig, replica_rank: int):
        from transformers import AutoConfig, AutoModelForCausalLM

        self.config: RolloutConfig = omega_conf_to_dataclass(config)
        self.model_config: HFModelConfig = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.replica_rank = replica_rank
        path = self.model_config.local_path
        kwargs = {"dtype": torch.float32, "attn_implementation": "sdpa", "trust_remote_code": False}
        if self.config.load_format.startswith("dummy"):
            # Random weights: the first weight sync brings the trainer's (as verl does with vLLM).
            self.model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path), **kwargs)
        else:
            self.model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        self.model.eval()
        self.param_names = frozenset(self.model.state_dict().keys())
        self.eos_token_ids = self._eos_token_ids()
        self.pad_token_id = self.model_config.tokenizer.pad_token_id
        torch.manual_seed(self.config.seed + replica_rank)

        self.awake = True
        self.weight_version = 0
        self.global_steps: int | None = None
        self.num_generated = 0
        self.num_generate_calls = 0  # model.generate() calls: fewer than requests when batching works
        self._pending_names: set[str] = set()
        self._queue: list[_Request] = []
        self._serving: asyncio.Task | None = None

    def _eos_token_ids(self) -> list[int]:
        ids = {self.model_config.tokenizer.eos_token_id}
        generation_eos = getattr(self.model_config.generation_config, "eos_token_id", None)
        if generation_eos is not None:
            ids.update(generation_eos if isinstance(generation_eos, list) else [generation_eos])
        return sorted(i for i in ids if i is not None)

    # ---------------------------------------------------------------- generation
    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Any = None,
        video_data: Any = None,
        **kwargs: Any,
    ) -> TokenOutput:
        if image_data is not None or video_data is not None:
            raise NotImplementedError("the hf rollout serves text-only models")
        if not self.awake:
            raise RuntimeError(
                f"hf rollout server {server_actor_name(self.config, self.replica_rank)} got a generate request "
                "while asleep: wake it (weight sync) before generating"
            )
        request = _Request(list(prompt_ids), dict(sampling_params), asyncio.get_running_loop().create_future())
        self._queue.append(request)
        if self._serving is None or self._serving.done():
            self._serving = asyncio.create_task(self._serve())
        token_ids, log_probs = await request.result
        self.num_generated += 1
        return TokenOutput(
            token_ids=token_ids,
            log_probs=log_probs if sampling_params.get("logprobs") else None,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    async def _serve(self) -> None:
        """Serve the queue in batches until it is empty: requests arriving during a batch form the next one."""
        await asyncio.sleep(0.005)  # let the rest of a concurrently sent batch arrive
        while self._queue:
            key = _sampling_key(self._queue[0].sampling_params)
            batch = [r for r in self._queue if _sampling_key(r.sampling_params) == key][: self.config.max_num_seqs]
            self._queue = [r for r in self._queue if r not in batch]
            try:
                results = await asyncio.to_thread(self._generate_batch, batch)
            except Exception as error:  # every waiting request gets the error, not a hang
                for request in batch:
                    request.result.set_exception(error)
                continue
            for request, result in zip(batch, results, strict=True):
                request.result.set_result(result)

    @torch.no_grad()
    def _generate_batch(self, batch: list[_Request]) -> list[tuple[list[int], list[float]]]:
        """One left-padded ``generate()`` for requests that share sampling settings; each row is cut at its own
        EOS and its own token budget."""
        params = batch[0].sampling_params
        temperature = float(params.get("temperature", self.config.temperature))
        top_k = int(params.get("top_k", self.config.top_k) or 0)
        top_p = float(params.get("top_p", self.config.top_p))
        do_sample = temperature > 0
        budgets = [_max_new_tokens(self.config, len(r.prompt_ids), r.sampling_params) for r in batch]
        width = max(len(r.prompt_ids) for r in batch)
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, request in enumerate(batch):
            input_ids[row, width - len(request.prompt_ids) :] = torch.tensor(request.prompt_ids)
            attention_mask[row, width - len(request.prompt_ids) :] = 1
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max(budgets),
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_p=top_p if do_sample else None,
            top_k=max(top_k, 0) if do_sample else None,
            repetition_penalty=float(params.get("repetition_penalty", 1.0)),
            eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
            return_dict_in_generate=True,
            output_logits=True,
        )
        self.num_generate_calls += 1
        new_tokens = output.sequences[:, width:]
        # Log-probs as verl's actor computes them: log_softmax(logits / T) of the sampled token.
        scale = temperature if do_sample else 1.0
        logits = torch.stack(output.logits, dim=1).float() / scale  # [batch, new tokens, vocab]
        log_probs = torch.log_softmax(logits, dim=-1).gather(-1, new_tokens[:, : logits.shape[1], None])[..., 0]
        results = []
        for row, budget in enumerate(budgets):
            tokens, row_log_probs = new_tokens[row, :budget].tolist(), log_probs[row, :budget].tolist()
            end = next((i + 1 for i, token in enumerate(tokens) if token in self.eos_token_ids), len(tokens))
            results.append((tokens[:end], row_log_probs[:end]))
        return results

    # ---------------------------------------------------------------- weight sync
    async def load_weights(self, named_tensors: list[tuple[str, torch.Tensor]]) -> None:
        """Copy one bucket of the trainer's weights into the model (names as in the HF state dict)."""
        unknown = [name for name, _ in named_tensors if name not in self.param_names]
        if unknown:
            raise KeyError(f"weight sync sent parameters this model does not have: {unknown[:5]}")
        state = self.model.state_dict()
        with torch.no_grad():
            for name, tensor in named_tensors:
                state[name].copy_(tensor.to(state[name].dtype))
                self._pending_names.add(name)

    async def finish_weight_update(self, global_steps: int | None = None) -> int:
        """Close a sync: every parameter must have arrived. Returns the new weight version."""
        missing = self.param_names - self._pending_names
        self._pending_names = set()
        tied = {"lm_head.weight"} if getattr(self.model.config, "tie_word_embeddings", False) else set()
        if missing - tied:
            raise RuntimeError(
                f"incomplete weight sync: {len(missing - tied)} parameters missing, e.g. {sorted(missing)[:5]}"
            )
        self.weight_version += 1
        if global_steps is not None:
            self.global_steps = global_steps
        return self.weight_version

    # ---------------------------------------------------------------- lifecycle (the vLLM server's verbs)
    async def wake_up(self, tags: list[str] | None = None) -> None:
        if self.config.free_cache_engine:
            self.awake = True

    async def sleep(self) -> None:
        if self.config.free_cache_engine:
            self.awake = False

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    async def state(self) -> dict[str, Any]:
        """What tests and the DUET trainer check: awake, weight version, requests served."""
        return {
            "awake": self.awake,
            "weight_version": self.weight_version,
            "global_steps": self.global_steps,
            "num_generated": self.num_generated,
        }

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict:
        return {}

    async def clear_kv_cache(self) -> None:
        return None

    release_kv_cache = resume_kv_cache = resume_generation = wait_for_requests_to_drain = clear_kv_cache

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None


class HFReplica(RolloutReplica):
    """A replica with one ``HFRolloutServer``, colocated on the node of its training workers (hybrid mode)."""

    async def launch_servers(self) -> None:
        if self.rollout_mode != RolloutMode.HYBRID:
            raise NotImplementedError(
                f"the hf rollout runs colocated with the trainer (hybrid engine); got mode {self.rollout_mode}"
            )
        node_id = await self.workers[0].__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id())
        name = server_actor_name(self.config, self.replica_rank)
        server = (
            ray.remote(HFRolloutServer)
            .options(
                name=name,
                num_cpus=0,
                max_concurrency=self.max_concurrency,
                scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node_id, soft=False),
            )
            .remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        )
        await server.state.remote()  # surface load errors here, not at the first request
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"hf://{name}"


class HFServerAdapter(BaseRollout):
    """Inside each training worker: wakes/sleeps this replica's server and streams the actor weights to it."""

    def __init__(self, config: RolloutConfig, model_config: HFModelConfig, device_mesh, replica_rank: int = -1):
        super().__init__(config, model_config, device_mesh)
        rollout_world_size = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        rank = int(os.environ["RANK"])
        self.replica_rank = rank // rollout_world_size if replica_rank == -1 else replica_rank
        self._has_server = rank % rollout_world_size == 0
        self._server = None

    @property
    def server(self):
        if self._server is None:
            self._server = ray.get_actor(server_actor_name(self.config, self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        if self.config.free_cache_engine and self._has_server:
            await self.server.wake_up.remote(tags=tags)

    async def release(self) -> None:
        if self.config.free_cache_engine and self._has_server:
            await self.server.sleep.remote()

    async def update_weights(
        self,
        weights: Iterable[tuple[str, torch.Tensor]],
        wire_format: str = "named_tensors",
        global_steps: int | None = None,
        peft_config: Any = None,
        **kwargs: Any,
    ) -> None:
        """Send every tensor to the server in buckets of ``checkpoint_engine.update_weights_bucket_megabytes``.

        Every rank iterates the generator: producing a full tensor from an FSDP shard is a collective.
        """
        if wire_format != "named_tensors" or peft_config is not None:
            raise NotImplementedError("the hf rollout syncs full named tensors only (no delta / LoRA-adapter sync)")
        start = time.perf_counter()
        bucket_limit = self.config.checkpoint_engine.update_weights_bucket_megabytes << 20
        bucket: list[tuple[str, torch.Tensor]] = []
        bucket_bytes = 0
        for name, tensor in weights:
            if not self._has_server:
                continue
            tensor = tensor.detach().to("cpu").contiguous()
            bucket.append((name, tensor))
            bucket_bytes += tensor.numel() * tensor.element_size()
            if bucket_bytes >= bucket_limit:
                await self.server.load_weights.remote(bucket)
                bucket, bucket_bytes = [], 0
        if not self._has_server:
            return
        if bucket:
            await self.server.load_weights.remote(bucket)
        version = await self.server.finish_weight_update.remote(global_steps)
        logger.info(
            "hf rollout replica %d: weights v%d synced in %.2fs",
            self.replica_rank,
            version,
            time.perf_counter() - start,
        )
