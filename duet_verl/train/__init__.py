"""Training: the entry point (``main``, run as ``python -m duet_verl.main``), the config (``duet_config``; its
start-up checks in ``config_checks``, each model's view in ``model_views``), the trainer and its step
(``trainer``), its checkpoints (``checkpointing``) and records (``records``), m's agent loop and the reward
manager verl calls (``agent_loop``, ``reward_manager``), and what keeps a run alive on a cluster (``cluster``,
``preemption``)."""
