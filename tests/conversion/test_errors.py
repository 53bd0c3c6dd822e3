"""Bad inputs fail with a clear message and leave no output (not even a temp folder)."""

from __future__ import annotations

import json
import shutil

import pytest

from conversion import layout
from conversion.errors import ConversionError
from conversion.exporter import export_hf
from conversion.importer import import_hf
from hf_models import make_hf_model
from medmegatron.errors import UserFacingError


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    return make_hf_model("llama", tmp_path_factory.mktemp("hf") / "llama", num_hidden_layers=2)


@pytest.fixture
def broken(hf, tmp_path):
    copy = tmp_path / "broken"
    shutil.copytree(hf, copy)
    return copy


def assert_fails_cleanly(fn, out, match):
    with pytest.raises(UserFacingError, match=match):
        fn()
    assert not out.exists()
    assert not list(out.parent.glob(out.name + ".tmp-*")), "temp output left behind"


def shards(folder):
    return sorted(folder.glob("model-*.safetensors"))


def test_truncated_shard(broken, tmp_path):
    shard = shards(broken)[-1]
    shard.write_bytes(shard.read_bytes()[:-100])
    assert_fails_cleanly(lambda: import_hf(broken, tmp_path / "out"), tmp_path / "out",
                         f"{shard.name}' is truncated")


def test_corrupt_header(broken, tmp_path):
    shard = shards(broken)[0]
    data = bytearray(shard.read_bytes())
    data[8:16] = b"\xff" * 8
    shard.write_bytes(bytes(data))
    assert_fails_cleanly(lambda: import_hf(broken, tmp_path / "out"), tmp_path / "out", "corrupt")


def test_missing_index(broken, tmp_path):
    (broken / "model.safetensors.index.json").unlink()
    assert_fails_cleanly(lambda: import_hf(broken, tmp_path / "out"), tmp_path / "out",
                         "model.safetensors.index.json")


def test_mismatched_config(broken, tmp_path):
    config = json.loads((broken / "config.json").read_text())
    config["intermediate_size"] += 8
    (broken / "config.json").write_text(json.dumps(config))
    assert_fails_cleanly(lambda: import_hf(broken, tmp_path / "out"), tmp_path / "out",
                         "config and weights do not match")


def test_failure_mid_stream_leaves_nothing(hf, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = layout.to_megatron

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise ConversionError("simulated read failure")
        return original(*args, **kwargs)

    monkeypatch.setattr(layout, "to_megatron", failing)
    assert_fails_cleanly(lambda: import_hf(hf, tmp_path / "out"), tmp_path / "out", "simulated")
    assert calls["n"] == 5  # it really was mid-stream


def test_exported_checksums_catch_corrupt_data(hf, tmp_path):
    ckpt = import_hf(hf, tmp_path / "ckpt")
    exported = export_hf(ckpt, tmp_path / "hf_out", max_shard_bytes=1 << 20)
    assert len(shards(exported)) > 1
    assert_fails_cleanly(lambda: export_hf(ckpt, tmp_path / "hf_out"), tmp_path / "hf_out2",
                         "already exists")
    shard = shards(exported)[0]
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF  # tensor bytes, not the header: only the checksum can tell
    shard.write_bytes(bytes(data))
    assert_fails_cleanly(lambda: import_hf(exported, tmp_path / "again"), tmp_path / "again", "checksum")


def test_export_needs_model_metadata(hf, tmp_path):
    ckpt = import_hf(hf, tmp_path / "ckpt")
    (ckpt / "medmegatron.json").unlink()
    assert_fails_cleanly(lambda: export_hf(ckpt, tmp_path / "out"), tmp_path / "out", "medmegatron.json")
