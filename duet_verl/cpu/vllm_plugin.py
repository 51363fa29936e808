"""vLLM plugin hook for the CPU build of vLLM (entry point group ``vllm.general_plugins``).

vLLM loads it in every one of its processes before a model loads. On vLLM's CPU platform, each linear layer's
weight is repacked for oneDNN after loading and the original dropped
(``dispatch_cpu_unquantized_gemm(layer, remove_weight=True)``); verl's weight sync then has nothing to load
into (``Attempted to load weight (torch.Size([128, 64])) into parameter (torch.Size([0]))``), and the
vocabulary head, which keeps its weight, would go on multiplying with the copy oneDNN packed at load time.
Here every CPU linear keeps its weight and multiplies with ``torch.nn.functional.linear``, so weights synced
in place are the weights used: slower GEMMs, which only matter beyond the tiny models the CPU runs. On any
other platform this does nothing.
"""

from __future__ import annotations


def _torch_linear(layer, remove_weight: bool) -> None:
    import torch

    layer.cpu_linear = lambda x, weight, bias: torch.nn.functional.linear(x, weight, bias)


def register() -> None:
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    from vllm.model_executor.layers import utils

    utils.dispatch_cpu_unquantized_gemm = _torch_linear  # looked up at call time by linear.py / embeddings
