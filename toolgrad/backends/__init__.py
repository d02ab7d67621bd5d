"""Model backends: the official ``openai`` client with record/replay, behind :class:`ChatModel`."""
