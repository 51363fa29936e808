"""Serving a trained DUET pair: ``python -m duet_verl.serve``, an OpenAI-compatible chat-completions endpoint
(``app``) over two engines (``engines``), speaking OpenAI's wire format (``protocol``). See docs/serving.md."""
