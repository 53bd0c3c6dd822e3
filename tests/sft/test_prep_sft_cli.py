"""`medmegatron prep sft CONFIG.yaml` builds the packed files the trainer reads."""

from __future__ import annotations

import json

import yaml
from sft_helpers import conv, write_jsonl

from medmegatron.cli import main


def test_prep_sft_cli_builds_packed_data_and_manifest(tmp_path, capsys):
    write_jsonl(tmp_path / "chat.jsonl", [conv(f"Question {i}?", f"Answer {i}.") for i in range(6)]
                + [{"messages": [{"role": "user", "content": "no answer"}]}])
    config = tmp_path / "sft.yaml"
    config.write_text(yaml.safe_dump({
        "sources": [{"name": "chat", "path": str(tmp_path / "chat.jsonl")}],
        "output_prefix": str(tmp_path / "out" / "packed"), "template": "chatml", "seq_length": 129}))
    assert main(["prep", "sft", str(config), "--on-error", "skip"]) == 0
    for suffix in ("", "_lossmask", "_boundaries"):
        assert (tmp_path / "out" / f"packed{suffix}.idx").exists()
    manifest = json.loads((tmp_path / "out" / "packed.manifest.json").read_text())
    assert "no_assistant_turn" in json.dumps(manifest)  # the bad conversation is counted, not lost
    assert main(["prep", "sft", str(tmp_path / "missing.yaml")]) == 2
    assert "SFT config file" in capsys.readouterr().err
