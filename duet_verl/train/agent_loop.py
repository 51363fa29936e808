"""m's agent loop: renders m's prompt from (question, signal) with the DUET template, then generates.

verl's single-turn loop tokenizes ``raw_prompt`` and left-truncates prompts that are too long, which could cut
the question. Here the prompt is rendered by ``duet_verl.core.prompts`` within m's prompt budget
(``rollout.prompt_length``) by shortening only the signal; what was cut is reported per row.
Registered through ``agent_loops.yaml`` (``rollout.agent.agent_loop_config_path``), name ``duet_small``.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopMetrics, AgentLoopOutput

from duet_verl.core.prompts import render_small_prompt

AGENT_NAME = "duet_small"


class SmallModelAgentLoop(AgentLoopBase):
    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        signal = kwargs.get("signal")
        prompt = render_small_prompt(
            self.tokenizer,
            str(kwargs["template"]),
            str(kwargs["question"]),
            None if signal is None else str(signal),
            max_prompt_tokens=self.rollout_config.prompt_length,
        )
        output = await self.server_manager.generate(
            request_id=uuid4().hex, prompt_ids=list(prompt.token_ids), sampling_params=sampling_params
        )
        response_ids = list(output.token_ids[: self.rollout_config.response_length])
        log_probs = output.log_probs[: len(response_ids)] if output.log_probs else None
        return AgentLoopOutput(
            prompt_ids=list(prompt.token_ids),
            response_ids=response_ids,
            response_mask=[1] * len(response_ids),
            response_logprobs=log_probs,
            num_turns=2,
            metrics=AgentLoopMetrics(),
            extra_fields={**output.extra_fields, "signal_tokens_cut": prompt.signal_tokens_cut},
        )
