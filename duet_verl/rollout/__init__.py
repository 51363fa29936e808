"""Rollout helpers shared by the CPU ``hf`` backend and the vLLM path."""
