"""Evaluate DUET (M writes the signal, m answers) against M alone, m alone and concise-prompted M.

``python -m duet_verl.evaluate --help``; docs/evaluation.md. Importing this package loads neither
torch nor vllm.
"""
