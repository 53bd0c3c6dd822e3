"""CPU mode: one test per redirected behaviour, each exercising the megatron-core code that needs it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from medmegatron.runtime import cpu_mode

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="CPU mode is inactive on GPU machines")


@pytest.fixture(scope="module", autouse=True)
def active():
    assert cpu_mode.activate() is True
    assert cpu_mode.is_active()


@pytest.fixture()
def parallel_groups():
    """A gloo world of one with megatron-core's model-parallel groups (this process)."""
    from medmegatron.config import ParallelConfig
    from medmegatron.runtime.distributed import init_model_parallel, init_process_group

    init_process_group()
    init_model_parallel(ParallelConfig(), seed=1)


def test_current_device_is_usable_as_device_argument():
    x = torch.empty(3, device=torch.cuda.current_device())
    assert x.device.type == "cpu"
    torch.cuda.set_device(0)  # no-op, must not raise


def test_cuda_rng_is_a_separate_stream_and_megatron_tracker_forks_it(parallel_groups):
    from megatron.core.tensor_parallel import get_cuda_rng_tracker, model_parallel_cuda_manual_seed

    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    model_parallel_cuda_manual_seed(1234, force_reset_rng=True)  # seeds the "CUDA" stream per TP rank
    assert torch.equal(torch.rand(4), expected), "seeding the CUDA stream must not touch the CPU stream"

    tracker = get_cuda_rng_tracker()
    before = torch.cuda.get_rng_state().clone()
    with tracker.fork():
        inside = torch.cuda.get_rng_state().clone()
    assert not torch.equal(before, inside), "fork() must switch to the model-parallel stream"
    assert torch.equal(torch.cuda.get_rng_state(), before), "fork() must restore the stream"


def test_streams_and_events_are_inert():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        y = torch.ones(2) * 2
    torch.cuda.current_stream().wait_stream(stream)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    end.record()
    torch.cuda.synchronize()
    assert start.elapsed_time(end) == 0.0 and y.sum().item() == 4.0


def test_literal_cuda_devices_become_cpu():
    assert torch.zeros(2, device="cuda").device.type == "cpu"
    assert torch.arange(3, device=torch.device("cuda", 0)).device.type == "cpu"
    t = torch.ones(2)
    assert t.cuda() is t
    assert t.to("cuda:0").device.type == "cpu"
    assert t.to(device="cuda", dtype=torch.float64).dtype == torch.float64
    assert torch.empty(2, pin_memory=True).device.type == "cpu"


def test_float_tensors_report_cuda_type_names_for_megatron_optimizer():
    assert torch.ones(1).type() == "torch.cuda.FloatTensor"
    assert torch.ones(1, dtype=torch.bfloat16).type() == "torch.cuda.BFloat16Tensor"
    assert torch.ones(1).type(torch.float64).dtype == torch.float64  # conversions untouched
    assert torch.ones(1, dtype=torch.int64).type() == "torch.LongTensor"


def test_moe_split_sizes_are_numpy_for_gloo_alltoall():
    from megatron.core.transformer.moe import moe_utils, token_dispatcher

    splits = moe_utils.maybe_move_tensor_to_cpu(torch.tensor([3, 1]), as_numpy=True)
    assert isinstance(splits, np.ndarray) and splits.tolist() == [3, 1]
    assert token_dispatcher.maybe_move_tensor_to_cpu is moe_utils.maybe_move_tensor_to_cpu
    assert moe_utils.te_general_gemm is None  # router takes its torch path instead of NameError


def test_moe_router_runs_without_transformer_engine(parallel_groups):
    from megatron.core.process_groups_config import ProcessGroupCollection
    from megatron.core.transformer import TransformerConfig
    from megatron.core.transformer.moe.router import TopKRouter

    config = TransformerConfig(num_layers=1, hidden_size=16, num_attention_heads=2, num_moe_experts=4,
                               moe_router_topk=2, moe_ffn_hidden_size=32, use_cpu_initialization=True,
                               moe_router_load_balancing_type="none")
    router = TopKRouter(config=config, pg_collection=ProcessGroupCollection.use_mpu_process_groups())
    probs, routing_map = router(torch.randn(5, 1, 16))
    assert routing_map.sum().item() == 5 * 2
    assert torch.allclose(probs.sum(dim=-1), torch.ones(5))  # softmax over the top-k renormalises


def test_checkpoint_save_does_not_hang_in_a_script_without_main_guard(tmp_path):
    """The spawn-context Manager used to re-run unguarded scripts; save must return promptly."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import torch\n"
        "from megatron.core import dist_checkpointing\n"
        "from megatron.core.dist_checkpointing import ShardedTensor\n"
        "from medmegatron.runtime.distributed import init_process_group\n"
        "init_process_group()\n"  # activates CPU mode
        f"out = r'{tmp_path / 'ckpt'}'\n"
        "import os; os.makedirs(out)\n"
        "t = torch.arange(6.0)\n"
        "dist_checkpointing.save({'w': ShardedTensor.from_rank_offsets('w', t)}, out)\n"
        "loaded = dist_checkpointing.load({'w': ShardedTensor.from_rank_offsets('w', torch.empty(6))}, out)\n"
        "assert torch.equal(loaded['w'], t)\n"
        "print('SAVED')\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("SAVED") == 1, "the script body ran more than once"


def test_activate_is_a_no_op_when_cuda_is_available():
    code = (
        "import torch\n"
        "torch.cuda.is_available = lambda: True\n"
        "original = torch.cuda.current_device\n"
        "from medmegatron.runtime import cpu_mode\n"
        "assert cpu_mode.activate() is False\n"
        "assert torch.cuda.current_device is original and not cpu_mode.is_active()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
