"""End-to-end merges of tiny HF Llamas: `transformers` loads and runs the result, whose tensors
equal the method's formula on the inputs; bad inputs fail before anything is written."""

from __future__ import annotations

import json

import pytest
import torch
from merge_models import make_llama, state_dict

from medmegatron.cli import main
from medmegatron.errors import ConfigError, UserFacingError
from medmegatron.merging import MergeConfig, load_merge_config, merge, methods


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    base = make_llama(root / "base", seed=0)
    return {"root": root, "base": base, "cpt": make_llama(root / "cpt", 1, base=base),
            "instruct": make_llama(root / "instruct", 2, base=base)}


def _load_and_run(folder):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(torch.tensor([[1, 5, 9, 13, 40]])).logits
    assert logits.shape == (1, 5, 96) and torch.isfinite(logits).all()
    return model


FORMULAS = {
    "linear": lambda b, x, y, n: methods.linear([x, y], [0.3, 0.7]),
    "task_arithmetic": lambda b, x, y, n: b + 0.8 * ((x - b) * 0.3 + (y - b) * 0.7),
    "ties": lambda b, x, y, n: methods.ties(b, [x, y], [0.3, 0.7], [0.5, 0.7], 0.8),
    "dare": lambda b, x, y, n: methods.dare(b, [x, y], [0.3, 0.7], [0.5, 0.7], 0.8, 11, n),
    "slerp": lambda b, x, y, n: methods.slerp(0.4, x, y),
}


@pytest.mark.parametrize("method", sorted(FORMULAS))
def test_merge_loads_in_transformers_and_equals_formula(method, family, tmp_path):
    cfg = MergeConfig(
        method=method, output=str(tmp_path / "out"),
        base_model=str(family["base"]) if method not in ("linear", "slerp") else None,
        models=[{"model": str(family["cpt"]), "weight": 0.3, "density": 0.5},
                {"model": str(family["instruct"]), "weight": 0.7}],
        parameters={"lambda": 0.8, "density": 0.7, "seed": 11, "t": 0.4},
        max_shard_gb=3e-5)  # ~32 KB shards: several files + index
    out = merge(cfg)
    merged = _load_and_run(out).state_dict()
    base, cpt, inst = (state_dict(family[k]) for k in ("base", "cpt", "instruct"))
    for name in merged:
        want = FORMULAS[method](base[name], cpt[name], inst[name], name)
        assert torch.allclose(merged[name], want, atol=1e-6), name
    assert len(list(out.glob("model-*.safetensors"))) > 1  # sharded, with an index
    assert json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    first = json.loads((family["cpt"] / "config.json").read_text())
    assert json.loads((out / "config.json").read_text()) == first
    assert not list(tmp_path.glob("out.tmp-*"))


def test_cli_merge_with_yaml_and_dtype(family, tmp_path, monkeypatch):
    import transformers

    import medmegatron.cli as cli

    if "merge" not in cli.SUBCOMMANDS:  # until `merge` is registered in SUBCOMMANDS
        monkeypatch.setattr(cli, "SUBCOMMANDS", (*cli.SUBCOMMANDS, "merge"))

    (tmp_path / "merge.yaml").write_text(
        "method: ties\n"
        f"base_model: {family['base']}\n"
        "models:\n"
        f"  - {{model: {family['cpt']}, weight: 1.0}}\n"
        f"  - {{model: {family['instruct']}, weight: 1.0}}\n"
        "parameters: {density: 0.5, lambda: 1.0}\n"
        "dtype: bfloat16\n"
        "output: merged\n")  # relative to the YAML file
    assert main(["merge", str(tmp_path / "merge.yaml")]) == 0
    model = _load_and_run(tmp_path / "merged")
    assert next(model.parameters()).dtype == torch.bfloat16
    recorded = json.loads((tmp_path / "merged/merge_config.json").read_text())
    assert recorded["method"] == "ties" and recorded["models"][0]["density"] == 0.5
    assert transformers.AutoConfig.from_pretrained(tmp_path / "merged").dtype == torch.bfloat16
    # a second run refuses to overwrite
    assert main(["merge", str(tmp_path / "merge.yaml")]) == 2


def test_mismatched_architecture_is_refused(family, tmp_path):
    deeper = make_llama(tmp_path / "deeper", 3, num_hidden_layers=3)
    cfg = MergeConfig(method="linear", output=str(tmp_path / "o"),
                      models=[str(family["cpt"]), str(deeper)])
    with pytest.raises(UserFacingError, match="different architectures: config.json num_hidden_layers"):
        merge(cfg)
    assert not (tmp_path / "o").exists()


def _rewrite(src, dst, edit):
    """Copy an HF folder as a single-file checkpoint whose tensors went through `edit`."""
    import shutil

    from safetensors.torch import save_file

    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    sd = {k: v.contiguous() for k, v in state_dict(src).items()}
    edit(sd)
    save_file(sd, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def test_missing_tensor_is_named(family, tmp_path):
    bad = _rewrite(family["instruct"], tmp_path / "bad", lambda sd: sd.pop("model.norm.weight"))
    cfg = MergeConfig(method="linear", output=str(tmp_path / "o"), models=[str(family["cpt"]), str(bad)])
    with pytest.raises(UserFacingError, match=r"bad' lacks \['model.norm.weight'\]"):
        merge(cfg)


def test_shape_mismatch_is_named(family, tmp_path):
    def edit(sd):
        sd["model.norm.weight"] = torch.ones(16)

    bad = _rewrite(family["instruct"], tmp_path / "bad", edit)
    cfg = MergeConfig(method="slerp", output=str(tmp_path / "o"), parameters={"t": 0.5},
                      models=[str(family["cpt"]), str(bad)])
    with pytest.raises(UserFacingError, match=r"'model.norm.weight' has shape \[16\]"):
        merge(cfg)


@pytest.mark.parametrize("raw, message", [
    ({"method": "ties", "models": ["a"]}, "set base_model"),
    ({"method": "slerp", "models": ["a", "b", "c"], "parameters": {"t": 0.5}}, "exactly 2 models"),
    ({"method": "slerp", "models": ["a", "b"]}, r"parameters.t in \[0, 1\]"),
    ({"method": "dare", "models": ["a"], "base_model": "b"}, r"density in \(0, 1\]"),
    ({"method": "dare", "models": [{"model": "a", "density": 1.5}], "base_model": "b"}, "density"),
    ({"method": "average", "models": ["a"]}, "unknown"),
    ({"method": "linear", "models": ["a"], "parameters": {"lamda": 1}}, r"unknown parameters \['lamda'\]"),
])
def test_config_errors_are_actionable(raw, message):
    with pytest.raises(ConfigError, match=message):
        MergeConfig(output="o", **raw)


def test_yaml_errors_name_file_and_line(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("method: linear\nmodels: [a\noutput: o\n")
    with pytest.raises(ConfigError, match=r"m.yaml:\d+: not valid YAML"):
        load_merge_config(path)
    path.write_text("method: linear\nmodels: [a]\noutput: o\nweights: [1]\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['weights'\]"):
        load_merge_config(path)
