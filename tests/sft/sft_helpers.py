"""Helpers shared by the SFT tests: chat JSONL writing, HF tokenizer folders."""

from __future__ import annotations

import json
import shutil

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")



def make_hf_folder(folder, chat_template=CHAT_TEMPLATE):
    from medmegatron.tokenizers import bundled_llama2_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundled_llama2_tokenizer(), folder / "tokenizer.model")
    config = {"tokenizer_class": "LlamaTokenizer", "legacy": True, "add_bos_token": False,
              "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    if chat_template is not None:
        config["chat_template"] = chat_template
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder



def write_jsonl(path, records):
    """Records are dicts (dumped) or raw strings (written as-is, for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def conv(*turns, system=None):
    """conv("q", "a", "q2", "a2", system="s") -> {"messages": [...]} alternating user/assistant."""
    msgs = [{"role": "system", "content": system}] if system is not None else []
    msgs += [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    return {"messages": msgs}
