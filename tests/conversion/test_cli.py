"""`medmegatron convert import|export` through the real CLI entry point (in-process)."""

from __future__ import annotations

import json

from hf_models import make_hf_model
from medmegatron.cli import main


def test_import_export_via_cli(tmp_path, capsys):
    hf = make_hf_model("qwen2", tmp_path / "hf", num_hidden_layers=2)
    assert main(["convert", "import", "--hf-dir", str(hf), "--output", str(tmp_path / "ck"),
                 "--tp", "2"]) == 0
    meta = json.loads((tmp_path / "ck" / "medmegatron.json").read_text())
    assert meta["config"]["model"]["add_qkv_bias"] and meta["hf"]["family"] == "qwen2"
    assert main(["convert", "export", "--ckpt", str(tmp_path / "ck"), "--output",
                 str(tmp_path / "out"), "--dtype", "bf16"]) == 0
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["torch_dtype"] == "bfloat16" and config["tie_word_embeddings"] is True


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    hf = make_hf_model("llama", tmp_path / "hf", num_hidden_layers=2)
    config = json.loads((hf / "config.json").read_text())
    config["architectures"] = ["FalconForCausalLM"]
    (hf / "config.json").write_text(json.dumps(config))
    assert main(["convert", "import", "--hf-dir", str(hf), "--output", str(tmp_path / "ck")]) == 2
    err = capsys.readouterr().err
    assert "FalconForCausalLM" in err and "not supported" in err and "Traceback" not in err
    assert not (tmp_path / "ck").exists()
    config["architectures"] = ["LlamaForCausalLM"]
    (hf / "config.json").write_text(json.dumps(config))
    assert main(["convert", "import", "--hf-dir", str(hf), "--output", str(tmp_path / "ck"),
                 "--tp", "3"]) == 2
    assert "--tp 3 must divide the 4 heads" in capsys.readouterr().err
    assert not (tmp_path / "ck").exists()
