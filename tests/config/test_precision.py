"""FP8 and bf16 settings reach megatron-core's TransformerConfig as intended (GPU paths, checked on CPU)."""

from __future__ import annotations

import pytest

from medmegatron.config import load_config, validate
from medmegatron.errors import ConfigError
from medmegatron.models.build import transformer_config


@pytest.mark.parametrize("recipe", ["delayed", "tensorwise", "blockwise", "mxfp8"])
def test_fp8_recipe_becomes_hybrid_format_with_that_recipe(recipe):
    cfg = load_config(None, ["model=tiny-llama", f"precision.fp8={recipe}"])
    validate(cfg, 1, cuda_available=True, check_paths=False)  # fine on a GPU machine
    tc = transformer_config(cfg, cuda=True)
    assert (tc.fp8, str(tc.fp8_recipe.value if hasattr(tc.fp8_recipe, "value") else tc.fp8_recipe)) == ("hybrid", recipe)
    assert tc.bf16 and not tc.fp16 and not tc.use_cpu_initialization


def test_fp8_is_refused_on_cpu_and_without_bf16():
    cfg = load_config(None, ["model=tiny-llama", "precision.fp8=blockwise"])
    with pytest.raises(ConfigError, match="needs Transformer Engine"):
        validate(cfg, 1, cuda_available=False, check_paths=False)
    cfg = load_config(None, ["model=tiny-llama", "precision.fp8=delayed", "precision.dtype=fp16"])
    with pytest.raises(ConfigError, match="needs precision.dtype=bf16"):
        validate(cfg, 1, cuda_available=True, check_paths=False)
    cfg = load_config(None, ["model=tiny-llama", "precision.fp8=e5m2"])
    with pytest.raises(ConfigError, match="precision.fp8='e5m2' must be one of"):
        validate(cfg, 1, cuda_available=True, check_paths=False)


def test_auto_precision_is_bf16_on_gpu_and_fp32_on_cpu():
    cfg = load_config(None, ["model=tiny-llama"])
    gpu, cpu = transformer_config(cfg, cuda=True), transformer_config(cfg, cuda=False)
    assert gpu.bf16 and str(gpu.params_dtype) == "torch.bfloat16"
    assert not cpu.bf16 and str(cpu.params_dtype) == "torch.float32" and cpu.use_cpu_initialization
