"""Read chat JSONL and check each conversation before anything is tokenized.

Accepted records (one JSON object per line):
  {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}   (OpenAI style)
  {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}, ...]}     (ShareGPT style)

Rules, each a counted reason when `on_error=skip`: valid JSON object with a message list; known
roles; string content; a system message only first; after it, turns alternate user/assistant
starting with user; at least one assistant turn. A trailing user turn (a question with no answer)
carries no training signal: it is removed and counted, not an error. Messages name file:line
and never quote the text (inputs may be clinical).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

from data_prep.errors import ErrorPolicy
from data_prep.io import open_lines

ROLES = ("system", "user", "assistant")
ALIASES = {"human": "user", "gpt": "assistant", "prompter": "user"}


@dataclass(frozen=True)
class Conversation:
    where: str                               # "file:line", for later messages
    system: str | None
    turns: tuple[tuple[str, str], ...]       # ((role, content), ...) alternating user/assistant

    def messages(self) -> list[dict]:
        """As `[{"role", "content"}]` - what HF chat templates take."""
        head = [{"role": "system", "content": self.system}] if self.system is not None else []
        return head + [{"role": r, "content": c} for r, c in self.turns]


def read_conversations(path: str, policy: ErrorPolicy, counts: dict,
                       default_system: str | None = None) -> Iterator[Conversation]:
    """Yield valid conversations of `path`; bad ones go to `policy` (raise or count)."""
    with open_lines(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            counts["records"] = counts.get("records", 0) + 1
            where = f"{path}:{lineno}"
            conv = _parse(raw, where, policy, counts, default_system)
            if conv is not None:
                yield conv


def _parse(raw: bytes, where: str, policy: ErrorPolicy, counts: dict,
           default_system: str | None) -> Conversation | None:
    def bad(reason, detail, hint=""):
        policy.bad_record(where, reason, detail, hint)
        return None

    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return bad("invalid_json", "not a valid JSON line", "each line must be one JSON object")
    if not isinstance(record, dict):
        return bad("invalid_json", "the line is JSON but not an object")
    if isinstance(record.get("messages"), list):
        items, rkey, ckey = record["messages"], "role", "content"
    elif isinstance(record.get("conversations"), list):
        items, rkey, ckey = record["conversations"], "from", "value"
    else:
        return bad("no_messages", "no 'messages' (or 'conversations') list",
                   'expected {"messages": [{"role": ..., "content": ...}, ...]}')
    messages = []
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            return bad("bad_message", f"message {k} is not an object")
        role = item.get(rkey)
        role = ALIASES.get(role, role)
        if role not in ROLES:
            shown = role if isinstance(role, str) and len(role) <= 20 else type(role).__name__
            return bad("unknown_role", f"message {k} has unknown role {shown!r}",
                       f"roles must be one of {ROLES} (or ShareGPT human/gpt)")
        content = item.get(ckey)
        if not isinstance(content, str):
            return bad("bad_content", f"message {k} ({role}) has no string '{ckey}'")
        messages.append((role, content))
    system = None
    if messages and messages[0][0] == "system":
        system = messages.pop(0)[1]
    elif default_system is not None:
        system = default_system
    if any(r == "system" for r, _ in messages):
        return bad("misplaced_system", "a system message appears after the first message",
                   "put the system prompt first (one per conversation)")
    if not any(r == "assistant" for r, _ in messages):
        return bad("no_assistant_turn", "conversation has no assistant turn (nothing to learn)",
                   "remove it from the source or add the answer")
    for k, (role, _) in enumerate(messages):
        if role != ("user" if k % 2 == 0 else "assistant"):
            return bad("bad_turn_order", f"turn {k} is '{role}' but turns must alternate "
                       "user/assistant starting with user", "merge consecutive turns of one role")
    if messages[-1][0] == "user":
        messages.pop()
        counts["trailing_user_turns_removed"] = counts.get("trailing_user_turns_removed", 0) + 1
    return Conversation(where, system, tuple(messages))
