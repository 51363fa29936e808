"""Version guard: fails loudly when the installed verl lacks what duet-verl overrides, registers into or calls.

duet-verl pins verl==0.9.1 and reaches into its internals. When verl changes, this test names every broken
contact point at once instead of letting a training run fail an hour in.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.metadata
import inspect
from pathlib import Path

import pytest


def _module_source_tree(module_name: str) -> ast.Module:
    """Parse a verl module without importing it or its package (some need GPU-only packages such as vllm)."""
    import verl

    path = Path(verl.__file__).parent.joinpath(*module_name.split(".")[1:]).with_suffix(".py")
    assert path.is_file(), f"module {module_name} is missing ({path})"
    return ast.parse(path.read_text())


def _params(fn) -> set[str]:
    return set(inspect.signature(fn).parameters)


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def check_version():
    import verl

    assert verl.__version__ == "0.9.1", f"verl {verl.__version__} installed; duet-verl is built for 0.9.1"


def check_plugin_hooks():
    import verl

    source = inspect.getsource(verl)
    assert "verl.plugins" in source, "verl no longer loads entry points of group 'verl.plugins'"
    assert "VERL_USE_EXTERNAL_MODULES" in source, "verl no longer honours VERL_USE_EXTERNAL_MODULES"
    names = {ep.name for ep in importlib.metadata.entry_points(group="verl.plugins")}
    assert "duet_verl" in names, "duet-verl's verl.plugins entry point is not installed (pip install -e .)"
    importlib.import_module("duet_verl.verl_plugin")  # verl swallows plugin errors; surface them here


def check_platform():
    from verl.plugin.platform import PlatformBase, PlatformRegistry

    from duet_verl.cpu.platform import PlatformCPU

    assert _params(PlatformRegistry.register) >= {"platform"}
    assert PlatformRegistry.get("cpu") is PlatformCPU
    missing = PlatformCPU.__abstractmethods__
    assert not missing, f"PlatformBase gained abstract methods the cpu platform lacks: {sorted(missing)}"
    assert issubclass(PlatformCPU, PlatformBase)
    PlatformCPU()


def check_process_group():
    from verl.utils import distributed
    from verl.workers import engine_workers

    assert _params(distributed.initialize_global_process_group_ray) >= {"timeout_second", "backend"}
    assert hasattr(engine_workers, "initialize_global_process_group_ray"), (
        "engine_workers no longer imports initialize_global_process_group_ray by name; update use_gloo_process_groups"
    )


def check_engines():
    from verl.workers.engine import EngineRegistry
    from verl.workers.engine.fsdp import transformer_impl

    assert _params(EngineRegistry.register) >= {"model_type", "backend", "device"}
    assert hasattr(transformer_impl, "CPUOffloadPolicy"), "transformer_impl no longer uses CPUOffloadPolicy"
    for cls in (transformer_impl.FSDPEngineWithLMHead, transformer_impl.FSDPEngineWithValueHead):
        assert _params(cls._build_fsdp_module) == {"self", "module"}, f"{cls.__name__}._build_fsdp_module changed"
    assert "CPUOffloadPolicy(" in inspect.getsource(transformer_impl.FSDPEngine._build_fsdp_module)


def check_rollout_registries():
    from verl.workers.rollout import base, replica

    assert isinstance(base._ROLLOUT_REGISTRY, dict) and ("vllm", "async") in base._ROLLOUT_REGISTRY
    assert base.BaseRollout.__abstractmethods__ == {"resume", "update_weights", "release"}
    assert _params(replica.RolloutReplicaRegistry.register) >= {"name", "loader"}
    assert replica.RolloutReplica.__abstractmethods__ == {"launch_servers"}
    assert replica.RolloutMode.HYBRID
    assert {"token_ids", "log_probs", "stop_reason", "extra_fields"} <= set(replica.TokenOutput.model_fields)
    init_source = inspect.getsource(replica.RolloutReplica.__init__)
    for attribute in ("self.servers", "self._server_handle", "self._server_address", "self.workers"):
        assert attribute in init_source, f"RolloutReplica no longer sets {attribute}"


def check_rollout_config():
    from verl.workers.config import CheckpointEngineConfig, HFModelConfig, RolloutConfig

    needed = {
        "name", "custom", "load_format", "free_cache_engine", "max_model_len", "prompt_length", "response_length",
        "seed", "temperature", "top_k", "top_p", "tensor_model_parallel_size", "data_parallel_size",
        "pipeline_model_parallel_size", "checkpoint_engine",
    }  # fmt: skip
    assert needed <= _fields(RolloutConfig), sorted(needed - _fields(RolloutConfig))
    assert "update_weights_bucket_megabytes" in _fields(CheckpointEngineConfig)
    assert {"local_path", "tokenizer", "generation_config"} <= _fields(HFModelConfig)


def check_worker_weight_sync_calls():
    from verl.workers.engine_workers import ActorRolloutRefWorker

    source = inspect.getsource(ActorRolloutRefWorker.update_weights)
    for call in ("self.rollout.resume(tags=", "self.rollout.update_weights(", "global_steps=global_steps"):
        assert call in source, f"ActorRolloutRefWorker.update_weights no longer calls {call}"


def check_agent_loop_batches():
    # ModelRole.generate pads every batch to a multiple of the agent-loop workers because verl splits it evenly
    # (DataProto.chunk asserts it); the recipes set val_kwargs' temperature because the loop reads no do_sample.
    from verl.experimental.agent_loop import agent_loop
    from verl.protocol import DataProto, pad_dataproto_to_divisor, unpad_dataproto

    generate = inspect.getsource(agent_loop.AgentLoopManager.generate_sequences)
    assert "prompts.chunk(len(self.agent_loop_workers))" in generate, "the agent loop no longer chunks by workers"
    assert "only support equal chunk" in inspect.getsource(DataProto.chunk)
    assert _params(pad_dataproto_to_divisor) == {"data", "size_divisor"} and _params(unpad_dataproto) >= {"pad_size"}
    loop = inspect.getsource(agent_loop)
    for key in ("temperature", "top_p", "top_k"):
        assert f"config.val_kwargs.{key}" in loop, f"the agent loop no longer reads val_kwargs.{key}"
    assert "val_kwargs.do_sample" not in loop, "the agent loop reads val_kwargs.do_sample now: revisit the recipes"


def _defines(module_name: str, owner: str | None, name: str) -> bool:
    """Whether verl's ``module_name`` defines ``name``: a method or ``self.name = ...`` of class ``owner``, or a
    module-level assignment when ``owner`` is None."""
    tree = _module_source_tree(module_name)
    if owner is None:
        targets = [t for n in tree.body if isinstance(n, ast.Assign) for t in n.targets]
        targets += [n.target for n in tree.body if isinstance(n, ast.AnnAssign)]
        return any(isinstance(t, ast.Name) and t.id == name for t in targets)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == owner:
            for inner in ast.walk(node):
                if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef) and inner.name == name:
                    return True
                if isinstance(inner, ast.Attribute) and inner.attr == name and isinstance(inner.ctx, ast.Store):
                    return True
            return False
    raise AssertionError(f"class {owner} not found in {module_name}")


def check_private_contacts():
    from duet_verl.verl_seam import PRIVATE_CONTACTS

    missing = [c for c in PRIVATE_CONTACTS if not _defines(c.module, c.owner, c.name)]
    gone = [f"{c.module}.{c.owner or ''}.{c.name} ({c.use})" for c in missing]
    assert not missing, f"gone from verl: {gone}"


# duet-verl's own private names that verl happens to use too (for something else)
OWN_PRIVATE_NAMES = {
    "_available": "a threading.Condition in duet_verl/core/scoring.py",
    "_handle": "the signal handler in preemption.py",
    "_run": "the request loop of duet_verl/serve/engines.py",
    "_has_server": "HFServerAdapter's own flag, named as verl's vLLM ServerAdapter names it",
}


def _private_names_touched(package: Path) -> dict[str, set[str]]:
    """Private names duet-verl reads, sets, defines as methods or imports from verl, with the files doing it."""
    touched: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Attribute):
                names = [node.attr]
            elif isinstance(node, ast.ClassDef):
                names = [n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("verl"):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    touched.setdefault(name, set()).add(str(path.relative_to(package.parent)))
    return touched


def check_private_contacts_complete():
    import re

    import verl

    import duet_verl
    from duet_verl.verl_seam import PRIVATE_CONTACTS

    verl_source = "\n".join(p.read_text() for p in sorted(Path(verl.__file__).parent.rglob("*.py")))
    listed = {c.name for c in PRIVATE_CONTACTS} | set(OWN_PRIVATE_NAMES)
    unlisted = {
        name: sorted(files)
        for name, files in _private_names_touched(Path(duet_verl.__file__).parent).items()
        if name not in listed and re.search(rf"def {name}\b|\.{name}\b|^{name}\s*=", verl_source, re.M)
    }
    assert not unlisted, f"private verl names touched but not in duet_verl/verl_seam.py: {unlisted}"


def check_model_role_fits_the_methods_it_borrows():
    # ModelRole passes itself as ``self`` to RayPPOTrainer methods: each attribute they read must exist on it.
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    from duet_verl.train.verl_adapter import ModelRole

    has = {f.name for f in dataclasses.fields(ModelRole)} | set(dir(ModelRole))
    for method in ("_compute_old_log_prob", "_compute_ref_log_prob", "_update_actor"):
        tree = ast.parse(inspect.getsource(getattr(RayPPOTrainer, method)).lstrip())
        reads = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
        }
        assert reads <= has, f"RayPPOTrainer.{method} now reads self.{sorted(reads - has)}, which ModelRole lacks"


def check_legacy_trainer_swap():
    # duet_verl.experiments.adaptive_penalty (the benchmarks' M alone with the adaptive λ) subclasses the legacy task
    # runner, swaps the RayPPOTrainer its run builds, and wraps the agent-loop manager before rewards are read.
    import verl.trainer.main_ppo_v0 as legacy
    from verl.trainer import main_ppo
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    assert "RayPPOTrainer" in legacy.TaskRunner.__ray_actor_class__.run.__code__.co_names
    assert "from verl.trainer.main_ppo_v0 import TaskRunner" in inspect.getsource(main_ppo.main)
    assert "self.async_rollout_manager = " in inspect.getsource(RayPPOTrainer.init_workers)
    fit = inspect.getsource(RayPPOTrainer.fit)
    assert fit.index("self.async_rollout_manager.generate_sequences(") < fit.index("extract_reward(batch)")


CHECKS = [
    check_version,
    check_plugin_hooks,
    check_platform,
    check_process_group,
    check_engines,
    check_rollout_registries,
    check_rollout_config,
    check_worker_weight_sync_calls,
    check_agent_loop_batches,
    check_private_contacts,
    check_private_contacts_complete,
    check_model_role_fits_the_methods_it_borrows,
    check_legacy_trainer_swap,
]


def test_installed_verl_has_everything_duet_verl_touches():
    failures = []
    for check in CHECKS:
        try:
            check()
        except Exception as error:  # collect all, report once
            failures.append(f"- {check.__name__}: {type(error).__name__}: {error}")
    if failures:
        pytest.fail("installed verl no longer matches what duet-verl relies on:\n" + "\n".join(failures))


def test_rays_job_stop_still_waits_as_long_as_the_launchers_ask():
    """The launchers' preemption path (docs/clusters.md, "Preemption") relies on ``ray job stop`` sending SIGTERM
    to the job's driver and waiting ``RAY_JOB_STOP_WAIT_TIME_S`` before SIGKILL: read in Ray's job supervisor."""
    from ray.dashboard.modules.job import job_supervisor

    source = inspect.getsource(job_supervisor)
    assert '"RAY_JOB_STOP_WAIT_TIME_S"' in source and '"SIGTERM"' in source, (
        "Ray's job supervisor no longer reads RAY_JOB_STOP_WAIT_TIME_S: the SLURM script and the KubeRay manifest "
        "would let Ray kill the driver before it checkpoints"
    )
