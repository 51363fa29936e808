"""A trained pair at inference, shared by evaluation (``duet_verl.evaluate``) and serving (``duet_verl.serve``):
the DUET chain (``chain``: M thinks, its thinking is the signal, m answers) and the generators behind it
(``backends``: transformers or vLLM behind one small protocol).

Names load on first use, so that importing ``duet_verl.inference.backends`` alone stays free of torch (the chain
reaches it through ``duet_verl.core``)."""

from importlib import import_module

_HOMES = {
    "backends": ("Generation", "Generator", "HFGenerator", "VLLMGenerator"),
    "chain": (
        "CONCISE_INSTRUCTION", "DuetOutput", "DuetPipeline", "LargeOutput", "Sampling", "SmallOutput", "answer",
        "chat_prompt", "generate", "large_output", "small_output", "small_prompt", "think",
    ),
}  # fmt: skip
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_HOME_OF)


def __getattr__(name: str):
    if name not in _HOME_OF:
        raise AttributeError(f"module 'duet_verl.inference' has no attribute {name!r}")
    return getattr(import_module(f"duet_verl.inference.{_HOME_OF[name]}"), name)
