"""Every template: the loss mask selects exactly the assistant texts and their end-of-turn token.

The check decodes the masked-in runs of the real token ids and compares them with the answers,
and checks the whole rendering against the template's published format (whitespace-insensitive,
since SentencePiece's dummy prefix adds a space at each separately tokenized piece).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from data_prep.errors import ErrorPolicy
from data_prep.sft.conversations import read_conversations
from data_prep.sft.encode import encode_pieces
from data_prep.sft.templates import TEMPLATES
from medmegatron.errors import UserFacingError
from sft_helpers import conv, make_hf_folder, write_jsonl

SYSTEM = "You are a careful clinician."
TURNS = ("What is hypertension?", "Persistently high arterial blood pressure.",
         "First-line drugs?", "Thiazides, ACE inhibitors, ARBs or calcium channel blockers.")
ANSWERS = TURNS[1::2]

EXPECTED = {  # the published formats, BOS/EOS written as <s>/</s>
    "med42": "<s><|system|>: {S}\n<|prompter|>:{U1}\n<|assistant|>:{A1}</s>"
             "<|prompter|>:{U2}\n<|assistant|>:{A2}</s>",
    "llama2": "<s>[INST] <<SYS>>\n{S}\n<</SYS>>\n\n{U1} [/INST] {A1} </s><s>[INST] {U2} [/INST] {A2} </s>",
    "mistral": "<s>[INST] {S}\n\n{U1} [/INST]{A1}</s>[INST] {U2} [/INST]{A2}</s>",
    "chatml": "<s><|im_start|>system\n{S}<|im_end|>\n<|im_start|>user\n{U1}<|im_end|>\n"
              "<|im_start|>assistant\n{A1}<|im_end|>\n<|im_start|>user\n{U2}<|im_end|>\n"
              "<|im_start|>assistant\n{A2}<|im_end|>\n",
}
END = {"med42": "</s>", "llama2": " </s>", "mistral": "</s>", "chatml": "<|im_end|>"}


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _decode_with_specials(tok, ids) -> str:
    """Decode, writing BOS/EOS as <s>/</s> (SentencePiece decoding drops them silently)."""
    out, run = [], []
    for i in list(ids) + [None]:
        if i in (tok.bos, tok.eos, None):
            if run:
                out.append(tok.decode(run))
                run = []
            if i is not None:
                out.append("<s>" if i == tok.bos else "</s>")
        else:
            run.append(int(i))
    return "".join(out)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def _conversation(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [conv(*TURNS, system=SYSTEM)])
    (c,) = read_conversations(str(path), ErrorPolicy(), {})
    return c


@pytest.mark.parametrize("name", ["med42", "llama2", "mistral", "chatml"])
def test_named_template_masks_exactly_the_answers(name, sp_tok, tmp_path):
    ids, mask = encode_pieces(TEMPLATES[name](_conversation(tmp_path), sp_tok), sp_tok)
    assert len(ids) == len(mask) and mask[0] == 0
    full = _decode_with_specials(sp_tok, ids)
    want = EXPECTED[name].format(S=SYSTEM, U1=TURNS[0], A1=TURNS[1], U2=TURNS[2], A2=TURNS[3])
    assert _squash(full) == _squash(want)
    runs = _runs(mask)
    assert len(runs) == len(ANSWERS)
    for (a, b), answer in zip(runs, ANSWERS):
        assert _decode_with_specials(sp_tok, ids[a:b]).strip() == answer + END[name]
    # and nothing of the prompt is trained: the unmasked text holds every prompt, no answer
    prompt_text = _decode_with_specials(sp_tok, ids[mask == 0])
    assert all(a not in prompt_text for a in ANSWERS)
    assert TURNS[0] in prompt_text and TURNS[2] in prompt_text and SYSTEM in prompt_text


def test_tokenizer_chat_template_masks_exactly_the_answers(hf_tok, tmp_path):
    c = _conversation(tmp_path)
    pieces = TEMPLATES["tokenizer"](c, hf_tok)
    ids, mask = encode_pieces(pieces, hf_tok)
    rendered = hf_tok.hf.apply_chat_template(c.messages(), tokenize=False)
    assert "".join(p.text for p in pieces) == rendered  # pieces tile the rendering exactly
    assert _squash(hf_tok.decode(ids)) == _squash(rendered)
    runs = _runs(mask)
    assert len(runs) == len(ANSWERS)
    for (a, b), answer in zip(runs, ANSWERS):
        assert ids[b - 1] == hf_tok.eos  # end-of-turn trained; the newline after it is not
        assert hf_tok.decode(ids[a:b]) == answer + "</s>"
    assert ids[0] == hf_tok.bos and mask[0] == 0


def test_tokenizer_template_that_is_not_prefix_stable_is_refused(tmp_path, hf_folder):
    from data_prep.sft.tokenizer import SFTTokenizer

    # renders the message count first, so a prefix of the conversation renders differently
    folder = make_hf_folder(tmp_path / "tok", "{{ messages|length }}{% for m in messages %}"
                            "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}")
    tok = SFTTokenizer(folder)
    with pytest.raises(UserFacingError, match=r"c\.jsonl:1: .*not prefix-stable"):
        TEMPLATES["tokenizer"](_conversation(tmp_path), tok)


def test_tokenizer_template_without_chat_template_says_what_to_do(sp_tok, tmp_path):
    with pytest.raises(UserFacingError, match="needs a tokenizer folder with a chat_template"):
        TEMPLATES["tokenizer"](_conversation(tmp_path), sp_tok)


def test_build_with_tokenizer_template_end_to_end(hf_folder, hf_tok, tmp_path):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from data_prep.sft import SFTConfig, build_sft_dataset

    path = write_jsonl(tmp_path / "c.jsonl", [conv(*TURNS, system=SYSTEM), conv("Dose?", "5 mg.")])
    m = build_sft_dataset(SFTConfig(sources=[{"name": "c", "path": str(path)}], template="tokenizer",
                                    tokenizer=str(hf_folder), output_prefix=str(tmp_path / "o"),
                                    seq_length=256))
    assert m["counts"]["samples"] == 2 and m["tokenizer"]["eos"] == hf_tok.eos
    tokens, mask = IndexedDataset(str(tmp_path / "o")), IndexedDataset(str(tmp_path / "o_lossmask"))
    answers = []
    for k in range(len(tokens)):
        ids, msk = tokens[k], mask[k]
        answers += [hf_tok.decode(ids[a:b]) for a, b in _runs(msk)]
    assert sorted(answers) == sorted([a + "</s>" for a in ANSWERS] + ["5 mg.</s>"])
