"""The ``hf`` rollout server on its own (no Ray): batched generation must give each request what a one-prompt
``generate()`` would, with log-probs that match the model's own."""

from __future__ import annotations

import asyncio

import pytest
import torch

from duet_verl.cpu.hf_rollout import HFRolloutServer
from duet_verl.testing.hf_server import standalone_hf_server


def make_server(model_dir, *overrides: str) -> HFRolloutServer:
    return standalone_hf_server(
        model_dir,
        "actor_rollout_ref.rollout.prompt_length=32",
        "actor_rollout_ref.rollout.response_length=12",
        *overrides,
    )


@pytest.fixture(scope="module")
def server(tiny_assets) -> HFRolloutServer:
    return make_server(tiny_assets["large"])


PROMPTS = [[5, 6, 7], [8, 9, 10, 11, 12, 13, 14], [20], [30, 31, 32, 33]]


def serve_concurrently(server: HFRolloutServer, prompts, sampling_params) -> list:
    async def run():
        requests = [server.generate(p, dict(sampling_params), request_id=str(i)) for i, p in enumerate(prompts)]
        return await asyncio.gather(*requests)

    return asyncio.run(run())


def model_log_probs(server: HFRolloutServer, prompt: list[int], response: list[int], temperature: float):
    """log_softmax(logits / T) of each response token by one unpadded forward pass (what verl's actor computes)."""
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logits = server.model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(response)[:, None])[:, 0]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_concurrent_requests_share_one_generate_and_stay_exact(server, temperature):
    calls_before = server.num_generate_calls
    outputs = serve_concurrently(server, PROMPTS, {"temperature": temperature, "logprobs": True})
    assert server.num_generate_calls - calls_before == 1, "four concurrent requests, one generate() call"
    for prompt, output in zip(PROMPTS, outputs, strict=True):
        assert 1 <= len(output.token_ids) <= 12
        assert all(t not in server.eos_token_ids for t in output.token_ids[:-1]), "cut at the first EOS"
        assert server.pad_token_id not in output.token_ids[:-1]
        expected = model_log_probs(server, prompt, output.token_ids, temperature or 1.0)
        assert torch.allclose(torch.tensor(output.log_probs), expected, atol=1e-4), "left padding changed the model"
    if temperature == 0.0:  # greedy: batched rows equal one-prompt generation
        for prompt, output in zip(PROMPTS, outputs, strict=True):
            assert serve_concurrently(server, [prompt], {"temperature": 0.0})[0].token_ids == output.token_ids


def test_different_sampling_settings_and_budgets(server):
    calls_before = server.num_generate_calls
    params = [{"temperature": 0.0, "max_tokens": 3}, {"temperature": 0.0, "max_tokens": 7}, {"temperature": 1.0}]

    async def run():
        return await asyncio.gather(*[server.generate(PROMPTS[i], p, request_id=str(i)) for i, p in enumerate(params)])

    outputs = asyncio.run(run())
    assert server.num_generate_calls - calls_before == 2, "greedy requests together, the sampled one apart"
    assert len(outputs[0].token_ids) <= 3 and len(outputs[1].token_ids) <= 7
    assert outputs[0].log_probs is None, "log-probs only when asked for"


def test_a_failing_batch_fails_every_request_in_it(server):
    with pytest.raises(ValueError, match="leaves no room"):
        serve_concurrently(server, [[1] * 50, [2, 3]], {"temperature": 0.0})
    assert serve_concurrently(server, [[2, 3]], {"temperature": 0.0})[0].token_ids, "the server still serves"


def test_batches_are_capped_by_max_num_seqs(tiny_assets):
    server = make_server(tiny_assets["small"], "actor_rollout_ref.rollout.max_num_seqs=1")
    serve_concurrently(server, PROMPTS, {"temperature": 1.0})
    assert server.num_generate_calls == len(PROMPTS)
