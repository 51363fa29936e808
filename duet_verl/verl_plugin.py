"""verl plugin hook: ``import verl`` imports this module in every process (entry point group ``verl.plugins``).

It registers what duet-verl adds to verl, once per process: tagged vLLM server names, so two models can each run
vLLM servers in one job (``duet_verl.rollout``), and the CPU backend, inert until chosen (``duet_verl.cpu``).

verl swallows exceptions raised by entry-point plugins (logged at debug level), so a failure here would be
silent; ``tests/test_verl_guard.py`` imports this module directly so that breakage fails the suite instead.
"""

from duet_verl import cpu, rollout

rollout.register_tagged_vllm()
cpu.register()
