"""What llama-cpp-python's OpenAI-compatible server (``--chat_format chatml-function-calling``,
the server the floor is measured on) shows a model and expects back, and training examples
in exactly that form.

The server renders every request with one fixed Jinja template (copied verbatim below from
llama-cpp-python 0.3.36, ``llama_chat_format.chatml_function_calling``, rendered in the same
sandboxed, auto-escaping environment) and then generates in grammar-constrained stages:

1. ``functions.<name>:`` or ``message:`` (one of the offered names);
2. after ``functions.<name>:\\n`` the arguments, constrained by the tool's JSON Schema (object
   keys in the schema's order, required ones first);
3. after the arguments and ``\\n``: another ``functions.<name>:`` (a further call in the same
   turn) or the *text* ``<|im_end|>`` (spelled in ordinary tokens: the grammar admits no
   special token), which ends the turn.

Two facts of that template bound what any model can do through this server: ``tool``
messages render as an empty ``<|im_start|>tool\\n`` (tool results never reach the model), and
after ``message:`` the same follow-up grammar leaves only ``<|im_end|>``, so a final answer is
always empty. A model therefore does best to make every call in its first turn, from what the
request states, and then end with ``message:``. :func:`training_examples` teaches exactly that:
one example for the calls, one for the closing turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

SERVER_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message.role }}\n"
    # System message
    "{% if message.role == 'system' %}"
    "{{ message.content }}"
    "{% if tool_calls %}"
    "\n\nYou have access to the following functions:\n"
    "{% for tool in tools %}"
    "\nfunctions.{{ tool.function.name }}:\n"
    "{{ tool.function.parameters | tojson }}"
    "\n{% endfor %}"
    "\n\nYou can respond to users messages with either a single message or one or more function calls."
    "\n\nTo respond with a message begin the message with 'message:', use the following format:"
    "\n\nmessage:"
    "\n<message>"
    "\n\nTo respond with one or more function calls begin the message with 'functions.<function_name>:', use the following format:"
    "\n\nfunctions.<function_name>:"
    '\n{ "arg1": "value1", "arg2": "value2" }'
    "\nfunctions.<function_name>:"
    '\n{ "arg1": "value1", "arg2": "value2" }'
    "{% endif %}"
    "<|im_end|>\n"
    "{% endif %}"
    # User message
    "{% if message.role == 'user' %}"
    "{{ message.content }}"
    "<|im_end|>\n"
    "{% endif %}"
    # Assistant message
    "{% if message.role == 'assistant' %}"
    ## Reglar message
    "{% if message.content and message.content | length > 0 %}"
    "{% if tool_calls %}"
    "message:\n"
    "{% endif %}"
    "{{ message.content }}"
    "<|im_end|>\n"
    "{% endif %}"
    ## Function calls
    "{% if 'tool_calls' in message %}"
    "{% for tool_call in message.tool_calls %}"
    "functions.{{ tool_call.function.name }}:\n"
    "{{ tool_call.function.arguments }}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# The same conversation format as a transformers chat template (tools shown whenever given,
# argument objects as JSON): what a merged model's tokenizer carries, and what TRL's
# chat-template path renders an HF-export row with. Unlike the server it does not HTML-escape.
TRAINING_CHAT_TEMPLATE = SERVER_TEMPLATE.replace("{% if tool_calls %}", "{% if tools %}").replace(
    "{{ tool_call.function.arguments }}",
    "{% if tool_call.function.arguments is mapping %}{{ tool_call.function.arguments | tojson }}"
    "{% else %}{{ tool_call.function.arguments }}{% endif %}")
END_TEXT = "<|im_end|>"  # generated as text, in ordinary tokens (see the module docstring)
MESSAGE_PREFIX = "message:"


def _template() -> Any:
    from jinja2 import StrictUndefined, select_autoescape
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # the server's environment, to the letter: auto-escaping is on for a string template
    return ImmutableSandboxedEnvironment(autoescape=select_autoescape(["html", "xml"]),
                                         undefined=StrictUndefined).from_string(SERVER_TEMPLATE)


def render_prompt(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> str:
    """The prompt the server builds for a request with ``tools`` and ``tool_choice: auto``."""
    return str(_template().render(messages=list(messages), tools=list(tools), tool_calls=True,
                                  add_generation_prompt=True))


def grammar_ordered(value: Any, schema: Any) -> Any:
    """``value`` with object keys in the order the server's JSON-Schema grammar emits them:
    required properties first, then the optional ones, each in the schema's order; keys the
    schema does not name last, as they came."""
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema, dict) else None
        return [grammar_ordered(v, items) for v in value]
    if not isinstance(value, dict):
        return value
    props = schema.get("properties") if isinstance(schema, dict) else None
    props = props if isinstance(props, dict) else {}
    required = set(schema.get("required") or []) if isinstance(schema, dict) else set()
    order = [k for k in props if k in required] + [k for k in props if k not in required]
    keys = [k for k in order if k in value] + [k for k in value if k not in props]
    return {k: grammar_ordered(value[k], props.get(k)) for k in keys}


def arguments_text(arguments: Any, parameters: Any) -> str:
    """Arguments as the grammar lets the model write them: compact JSON, schema key order."""
    return json.dumps(grammar_ordered(arguments, parameters), ensure_ascii=False, separators=(",", ":"))


def calls_completion(calls: Sequence[tuple[str, str]]) -> str:
    """The text the server generates for one turn of (name, arguments text) calls."""
    return "".join(f"functions.{name}:\n{args}\n" for name, args in calls) + END_TEXT


def closing_completion() -> str:
    """The text the server generates for a turn that makes no call (the answer is empty)."""
    return f"{MESSAGE_PREFIX}\n{END_TEXT}"


def training_examples(row: dict[str, Any]) -> list[dict[str, str]]:
    """(prompt, completion) pairs for one HF-export row (``messages`` and ``tools``): the turn
    that makes every call, and the closing turn after the (unseen) results."""
    messages, tools = row["messages"], row["tools"]
    head = [m for m in messages if m.get("role") in ("system", "user")][:2]
    parameters = {t["function"]["name"]: t["function"].get("parameters") for t in tools}
    calls = [(tc["function"]["name"], arguments_text(tc["function"]["arguments"],
                                                     parameters.get(tc["function"]["name"])))
             for m in messages if m.get("role") == "assistant" for tc in m.get("tool_calls") or []]
    examples = [{"prompt": render_prompt(head, tools), "completion": calls_completion(calls) if calls
                 else closing_completion()}]
    if calls:
        turn = {"role": "assistant", "content": "", "tool_calls": [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
            for i, (name, args) in enumerate(calls)]}
        results = [{"role": "tool", "tool_call_id": f"call_{i}", "content": ""} for i in range(len(calls))]
        examples.append({"prompt": render_prompt([*head, turn, *results], tools),
                         "completion": closing_completion()})
    return examples
