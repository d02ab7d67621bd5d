"""Fine-tuning a small causal LM on the HF export (``toolgrad train``; optional extra ``[train]``).

* :mod:`.chat_format`: the conversation format taught and served (tools in the system turn,
  ``<tool_call>`` calls, tool results shown), its chat template and the server's chat handler;
* :mod:`.base_model`: a base model from a GGUF file (dequantized into transformers) or an HF folder;
* :mod:`.finetune`: LoRA training (transformers + peft) with progress, checkpoints and a seed;
* :mod:`.gguf_export`: merge the adapter and write a GGUF with llama.cpp's own converter;
* :mod:`.serve`: the llama-cpp-python server command that serves it for ``toolgrad eval``.

Nothing here is imported by the rest of the kit; torch and friends load only when used.
"""
