"""One small tokenizer interface for SFT: `encode(text)` without specials, `bos`, `eos`, `render`.

SentencePiece files (and None = the bundled Llama-2 model) go through megatron-core's tokenizer
(`medmegatron.tokenizers.load_tokenizer`), exactly as pretraining data does. Hugging Face folders
go through `transformers.AutoTokenizer` directly: it is the only thing that can run their
`chat_template`, and `encode(..., add_special_tokens=False)` still maps special-token strings in
the text (`<s>`, `<|im_end|>`) to their ids, which templates rely on.
"""

from __future__ import annotations

import os
from pathlib import Path

from medmegatron.errors import UserFacingError


class SFTTokenizer:
    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path else None
        self.hf = None
        if self.path is not None and self.path.is_dir() and any(
                (self.path / f).exists() for f in ("tokenizer_config.json", "tokenizer.json")):
            from transformers import AutoTokenizer

            try:
                self.hf = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            except Exception as exc:  # transformers raises many types for a broken folder
                raise UserFacingError(f"cannot load the Hugging Face tokenizer in '{self.path}' "
                                      f"({type(exc).__name__}): check tokenizer_config.json") from None
            self.bos = self.hf.bos_token_id
            self.eos = self.hf.eos_token_id
            self.vocab_size = len(self.hf)
            self.chat_template = getattr(self.hf, "chat_template", None)
        else:
            from medmegatron.tokenizers import load_tokenizer

            self.mc = load_tokenizer(self.path)
            bos = getattr(self.mc, "bos", None)
            self.bos = int(bos) if bos is not None and bos >= 0 else None
            self.eos = int(self.mc.eod)
            self.vocab_size = int(self.mc.vocab_size)
            self.chat_template = None
        if self.eos is None:
            raise UserFacingError(f"tokenizer '{self.path}' defines no EOS token: templates end "
                                  "assistant turns with it; set eos_token in tokenizer_config.json")

    def encode(self, text: str) -> list[int]:
        if self.hf is not None:
            return self.hf.encode(text, add_special_tokens=False)
        return list(self.mc.tokenize(text))

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.hf is not None:
            return self.hf.decode(ids)
        return self.mc.detokenize(ids)

    def render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        if not self.chat_template:
            raise UserFacingError(
                f"template 'tokenizer' needs a tokenizer folder with a chat_template, but "
                f"'{self.path or 'bundled Llama-2 SentencePiece'}' has none: set sft.tokenizer to "
                "a Hugging Face folder whose tokenizer_config.json has chat_template, or use a "
                "named template (med42, llama2, chatml, mistral)")
        return self.hf.apply_chat_template(messages, tokenize=False,
                                           add_generation_prompt=add_generation_prompt)
