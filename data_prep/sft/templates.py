"""Chat templates: a conversation -> a list of pieces, each trained (assistant) or not (prompt).

A piece is either text (tokenized on its own) or one special token id (BOS/EOS). Tokenizing each
piece separately and concatenating defines the ids the trainer sees, so the loss mask is exact by
construction: no offset mapping, no re-tokenization drift at piece boundaries. (SentencePiece
adds its dummy-prefix space to each piece; that is part of the defined ids.)

Trained = the assistant's text plus its end-of-turn marker (EOS, or `<|im_end|>` for ChatML), so
the model learns to stop. Everything else - BOS, role tags, system and user text - is prompt.

Formats (S = system, U = user, A = assistant, [BOS]/[EOS] = the tokenizer's special ids):
- med42 (Med42 v1 model card, from memory): `<|system|>: S\\n<|prompter|>:U\\n<|assistant|>:A[EOS]`
  then the next `<|prompter|>:` directly after the EOS. Only the assistant turn ends with EOS
  (the card shows the prompt turns ending in a newline); [BOS] once at the start. Med42-v2 uses
  Llama-3's own chat template: use `template: tokenizer` with its tokenizer folder for that.
- llama2: `[BOS][INST] <<SYS>>\\nS\\n<</SYS>>\\n\\nU [/INST] A [EOS]` per turn pair, each pair
  opening with [BOS] (the Llama-2 chat reference code); the system block only in the first pair.
  The answer piece is `A ` without the leading space: SentencePiece's dummy prefix supplies it,
  which reproduces the reference's `[/INST] A ` tokenization (`▁A ... ▁` + EOS).
- mistral: `[BOS][INST] U [/INST]A[EOS][INST] U2 [/INST]A2[EOS]`; Mistral instruct has no system
  role, so S is prepended to the first user message followed by a blank line.
- chatml: `<|im_start|>role\\ntext<|im_end|>\\n`; trained: A + `<|im_end|>`; the newline after
  it is prompt. [BOS] first only if the tokenizer has one (Llama-family tokenizers expect it).
- tokenizer: the tokenizer folder's own `chat_template` (see `tokenizer_template_pieces`).
"""

from __future__ import annotations

from dataclasses import dataclass

from data_prep.sft.conversations import Conversation
from medmegatron.errors import UserFacingError


@dataclass(frozen=True)
class Piece:
    text: str | None = None
    token: int | None = None
    train: bool = False


def _t(text: str, train: bool = False) -> Piece:
    return Piece(text=text, train=train)


def _pairs(conv: Conversation):
    turns = conv.turns
    return [(turns[i][1], turns[i + 1][1]) for i in range(0, len(turns) - 1, 2)]


def med42(conv: Conversation, tok) -> list[Piece]:
    pieces = [Piece(token=tok.bos)] if tok.bos is not None else []
    if conv.system is not None:
        pieces.append(_t(f"<|system|>: {conv.system}\n"))
    for user, answer in _pairs(conv):
        pieces += [_t(f"<|prompter|>:{user}\n<|assistant|>:"), _t(answer, True),
                   Piece(token=tok.eos, train=True)]
    return pieces


def llama2(conv: Conversation, tok) -> list[Piece]:
    pieces = []
    for i, (user, answer) in enumerate(_pairs(conv)):
        system = (f"<<SYS>>\n{conv.system.strip()}\n<</SYS>>\n\n"
                  if i == 0 and conv.system is not None else "")
        if tok.bos is not None:
            pieces.append(Piece(token=tok.bos))
        pieces += [_t(f"[INST] {system}{user.strip()} [/INST]"), _t(f"{answer.strip()} ", True),
                   Piece(token=tok.eos, train=True)]
    return pieces


def mistral(conv: Conversation, tok) -> list[Piece]:
    pieces = [Piece(token=tok.bos)] if tok.bos is not None else []
    for i, (user, answer) in enumerate(_pairs(conv)):
        if i == 0 and conv.system is not None:
            user = f"{conv.system}\n\n{user}"
        pieces += [_t(f"[INST] {user} [/INST]"), _t(answer, True), Piece(token=tok.eos, train=True)]
    return pieces


def chatml(conv: Conversation, tok) -> list[Piece]:
    pieces = [Piece(token=tok.bos)] if tok.bos is not None else []
    if conv.system is not None:
        pieces.append(_t(f"<|im_start|>system\n{conv.system}<|im_end|>\n"))
    for user, answer in _pairs(conv):
        pieces += [_t(f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"),
                   _t(answer + "<|im_end|>", True), _t("\n")]
    return pieces


def tokenizer_template_pieces(conv: Conversation, tok) -> list[Piece]:
    """Pieces from the tokenizer's own `chat_template`, assistant spans found by prefix rendering.

    For each assistant message i: P = render(messages[:i], add_generation_prompt=True) ends where
    the answer starts, Q = render(messages[:i+1]) ends after its end-of-turn; the span Q[len(P):]
    is trained. This needs the template to be prefix-stable (rendering more messages never changes
    earlier text); when it is not (e.g. templates that drop earlier reasoning), we stop with an
    error rather than guess. Trailing whitespace of a span (the newline after `<|im_end|>`) is
    moved to the prompt, as in the named ChatML template.
    """
    messages = conv.messages()
    full = tok.render(messages, add_generation_prompt=False)
    pieces, pos = [], 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tok.render(messages[:i], add_generation_prompt=True)
        upto = tok.render(messages[: i + 1], add_generation_prompt=False)
        if not (full.startswith(upto) and upto.startswith(prompt) and len(prompt) >= pos):
            raise UserFacingError(
                f"{conv.where}: the tokenizer's chat_template is not prefix-stable (rendering the "
                f"conversation up to message {i} is not a prefix of the whole), so assistant spans "
                "cannot be located exactly; use a named template (med42, llama2, chatml, mistral)")
        span = upto[len(prompt):]
        kept = span.rstrip() or span
        if pos < len(prompt):
            pieces.append(_t(full[pos:len(prompt)]))
        pieces.append(_t(kept, True))
        pos = len(prompt) + len(kept)
    if pos < len(full):
        pieces.append(_t(full[pos:]))
    return pieces


TEMPLATES = {"med42": med42, "llama2": llama2, "mistral": mistral, "chatml": chatml,
             "tokenizer": tokenizer_template_pieces}
