"""CPU mode: let megatron-core run on a machine without CUDA (gloo, fp32), for tests and dev boxes.

megatron-core assumes a GPU in a few hundred places (`torch.cuda.current_device()`, CUDA RNG
state, streams/events, literal `device="cuda"`, `param.type() == 'torch.cuda.FloatTensor'`).
Rather than fork or mock the engine, this module redirects those CUDA calls to CPU equivalents,
so the real schedules, DDP, distributed optimizer, MoE dispatchers and dist_checkpointing run
unchanged. Each redirection is one function below with its own unit test.

`activate()` is a no-op when CUDA is available: GPU runs never see any of this.

Semantics worth knowing:
- The "CUDA" RNG is a dedicated CPU `torch.Generator`, separate from the default CPU generator,
  exactly as on a GPU, where `torch.cuda.manual_seed` does not touch the CPU stream. So
  `model_parallel_cuda_manual_seed` (which seeds per TP rank) cannot make CPU-initialised weights
  differ across TP ranks. Random ops on CPU tensors inside a tracker `fork()` still draw from
  the default CPU generator; our models have no dropout, and NEFTune draws its own noise.
- Only `activate()` mutates global state, and it does so once per process.
"""

from __future__ import annotations

import contextlib
import functools
import logging

import torch
from torch.overrides import TorchFunctionMode

log = logging.getLogger(__name__)

_ACTIVE = False
_CUDA_GENERATOR: torch.Generator | None = None


def cuda_available() -> bool:
    return torch.cuda.is_available()


def is_active() -> bool:
    return _ACTIVE


# --- 1. device queries ---------------------------------------------------------------------------
def _redirect_device_queries() -> None:
    """`torch.cuda.current_device()` -> cpu device (callers pass it as `device=`); set_device no-op."""
    cuda = torch.cuda
    cuda.current_device = lambda: torch.device("cpu")
    cuda.set_device = lambda device: None
    cuda._lazy_init = lambda: None
    cuda._lazy_call = lambda callable_, **kwargs: callable_()
    cuda.is_current_stream_capturing = lambda: False
    cuda.empty_cache = lambda: None
    for name in ("memory_allocated", "max_memory_allocated", "memory_reserved",
                 "max_memory_reserved"):
        setattr(cuda, name, lambda device=None: 0)
    cuda.reset_peak_memory_stats = lambda device=None: None
    cuda.reset_max_memory_allocated = lambda device=None: None
    cuda.memory_stats = lambda device=None: {}


# --- 2. CUDA RNG -> a dedicated CPU generator ----------------------------------------------------
class _AnyIndex(tuple):
    """`torch.cuda.default_generators[idx]` where idx may be an int or the cpu device we return."""

    def __new__(cls, generator):
        return super().__new__(cls, (generator,))

    def __getitem__(self, index):
        return tuple.__getitem__(self, 0)


def _redirect_cuda_rng() -> None:
    global _CUDA_GENERATOR
    _CUDA_GENERATOR = generator = torch.Generator(device="cpu")

    def get_rng_state(device="cuda"):
        return generator.get_state()

    def set_rng_state(new_state, device="cuda"):
        generator.set_state(new_state)

    def manual_seed(seed):
        generator.manual_seed(int(seed))

    for module in (torch.cuda, torch.cuda.random):
        module.get_rng_state = get_rng_state
        module.set_rng_state = set_rng_state
        module.manual_seed = manual_seed
        module.manual_seed_all = manual_seed
        module.get_rng_state_all = lambda: [generator.get_state()]
        module.set_rng_state_all = lambda states: generator.set_state(states[0])
        module.initial_seed = generator.initial_seed
    torch.cuda.default_generators = _AnyIndex(generator)


# --- 3. streams and events -----------------------------------------------------------------------
class NullStream:
    """Stands in for `torch.cuda.Stream`: on CPU every op is already ordered and complete."""

    def __init__(self, *args, **kwargs):
        pass

    def wait_stream(self, stream):
        pass

    def wait_event(self, event):
        pass

    def record_event(self, event=None):
        return event or NullEvent()

    def synchronize(self):
        pass

    def query(self):
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class NullEvent:
    """Stands in for `torch.cuda.Event`; timings read as zero."""

    def __init__(self, *args, **kwargs):
        pass

    def record(self, stream=None):
        pass

    def wait(self, stream=None):
        pass

    def synchronize(self):
        pass

    def query(self):
        return True

    def elapsed_time(self, other):
        return 0.0


def _redirect_streams_and_events() -> None:
    cuda = torch.cuda
    _default = NullStream()
    cuda.Stream = NullStream
    cuda.Event = NullEvent
    cuda.current_stream = lambda device=None: _default
    cuda.default_stream = lambda device=None: _default
    cuda.stream = lambda stream=None: contextlib.nullcontext(stream)
    cuda.synchronize = lambda device=None: None
    # nvtx ranges are profiler annotations; without CUDA they have nothing to annotate.
    cuda.nvtx.range_push = lambda *a, **k: None
    cuda.nvtx.range_pop = lambda *a, **k: None
    cuda.nvtx.range = lambda *a, **k: contextlib.nullcontext()


# --- 4. literal "cuda" devices -------------------------------------------------------------------
def _is_cuda_device(device) -> bool:
    if isinstance(device, str):
        return device.startswith("cuda")
    if isinstance(device, torch.device):
        return device.type == "cuda"
    return isinstance(device, int) and not isinstance(device, bool)  # a bare int means cuda:N


class CudaToCpuMode(TorchFunctionMode):
    """Rewrites `device=` arguments that name CUDA to CPU, and `pin_memory=True` to False."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if "device" in kwargs and _is_cuda_device(kwargs["device"]):
            kwargs = {**kwargs, "device": "cpu"}
        if kwargs.get("pin_memory"):
            kwargs = {**kwargs, "pin_memory": False}
        return func(*args, **kwargs)


_ORIGINAL_TO = torch.Tensor.to


def _tensor_to(self, *args, **kwargs):
    if args and _is_cuda_device(args[0]):
        args = ("cpu",) + args[1:]
    if "device" in kwargs and _is_cuda_device(kwargs["device"]):
        kwargs["device"] = "cpu"
    return _ORIGINAL_TO(self, *args, **kwargs)


def _tensor_cuda(self, device=None, non_blocking=False, memory_format=torch.preserve_format):
    return self


def _redirect_cuda_devices() -> None:
    torch.Tensor.to = _tensor_to
    torch.Tensor.cuda = _tensor_cuda
    torch.Tensor.pin_memory = lambda self, device=None: self
    torch.nn.Module.cuda = lambda self, device=None: self
    # Pushed once for the whole process; the mode stack is per thread, so background threads
    # (e.g. checkpoint writers) rely on the Tensor.to/.cuda patches above.
    CudaToCpuMode().__enter__()


# --- 5. type names checked literally by the optimizer ---------------------------------------------
_ORIGINAL_TYPE = torch.Tensor.type
_CPU_TO_CUDA_TYPE = {
    "torch.FloatTensor": "torch.cuda.FloatTensor",
    "torch.HalfTensor": "torch.cuda.HalfTensor",
    "torch.BFloat16Tensor": "torch.cuda.BFloat16Tensor",
}


def _tensor_type(self, dtype=None, non_blocking=False, **kwargs):
    """With no argument, report CPU float tensors under their CUDA type names.

    megatron-core's optimizer, distributed optimizer and grad clipping check
    `param.type() == 'torch.cuda.FloatTensor'` to sort params into fp32/fp16 groups; CPU tensors
    would fall through to "unsupported parameter type". Conversions (`t.type(dtype)`) are untouched.
    """
    if dtype is None and not kwargs:
        name = _ORIGINAL_TYPE(self)
        return _CPU_TO_CUDA_TYPE.get(name, name)
    return _ORIGINAL_TYPE(self, dtype, non_blocking, **kwargs)


def _report_cuda_type_names() -> None:
    torch.Tensor.type = _tensor_type


# --- 6. megatron-core 0.16.1 MoE fixes ------------------------------------------------------------
def _fix_moe_utils() -> None:
    """Two MoE paths that only work with Transformer Engine / CUDA tensors.

    a) `moe_utils` names `te_general_gemm` and fused helpers even without TE (NameError in the
       router): define them as None, which sends the router down its torch path.
    b) `maybe_move_tensor_to_cpu(t, as_numpy=True)` only converts CUDA tensors, so on CPU the
       alltoall dispatcher hands torch tensors to `all_to_all_single` as split sizes, which gloo
       rejects. Return a numpy array for CPU tensors as well. The dispatcher imported the name,
       so both module attributes are replaced.
    """
    from megatron.core.transformer.moe import moe_utils, token_dispatcher

    for name in ("te_general_gemm", "fused_topk_with_score_function",
                 "fused_compute_score_for_moe_aux_loss", "fused_moe_aux_loss"):
        if not hasattr(moe_utils, name):
            setattr(moe_utils, name, None)

    original = moe_utils.maybe_move_tensor_to_cpu

    @functools.wraps(original)
    def maybe_move_tensor_to_cpu(tensor, as_numpy=False, record_stream=False):
        if tensor is not None and as_numpy and isinstance(tensor, torch.Tensor) and not tensor.is_cuda:
            return tensor.numpy()
        return original(tensor, as_numpy=as_numpy, record_stream=record_stream)

    moe_utils.maybe_move_tensor_to_cpu = maybe_move_tensor_to_cpu
    if hasattr(token_dispatcher, "maybe_move_tensor_to_cpu"):
        token_dispatcher.maybe_move_tensor_to_cpu = maybe_move_tensor_to_cpu


# --- 7. dist_checkpointing's result queue ---------------------------------------------------------
def _fix_checkpoint_results_queue() -> None:
    """Make `dist_checkpointing.save` not hang on CPU.

    The filesystem writer collects results through a `multiprocessing.Manager().Queue()` created
    with the *spawn* start method. A spawned Manager re-imports the launching script as
    `__mp_main__`; a script without an `if __name__ == "__main__":` guard (any torchrun-launched
    test or notebook) then re-runs its training code in the Manager process and the save never
    returns. The writer processes themselves are forked, so a fork-context Manager is enough and
    needs no re-import. GPU runs keep megatron-core's behaviour.
    """
    import multiprocessing as mp

    from megatron.core.dist_checkpointing.strategies import filesystem_async

    def _get_write_results_queue():
        if filesystem_async._results_queue is None:
            filesystem_async._results_queue = mp.get_context("fork").Manager().Queue()
        return filesystem_async._results_queue

    filesystem_async._get_write_results_queue = _get_write_results_queue


# --- 8. modules that bound CUDA helpers at import time ---------------------------------------------
def _rebind_imported_names() -> None:
    """megatron's RNG module does `from torch.cuda import _lazy_call, _lazy_init` at import."""
    from megatron.core.tensor_parallel import random as mc_random

    mc_random._lazy_call = torch.cuda._lazy_call
    mc_random._lazy_init = torch.cuda._lazy_init


def activate(force: bool = False) -> bool:
    """Enable CPU mode if CUDA is absent (or `force`); return whether it is active."""
    global _ACTIVE
    if _ACTIVE:
        return True
    if cuda_available() and not force:
        return False
    _redirect_device_queries()
    _redirect_cuda_rng()
    _redirect_streams_and_events()
    _redirect_cuda_devices()
    _report_cuda_type_names()
    _fix_moe_utils()
    _fix_checkpoint_results_queue()
    _rebind_imported_names()
    _ACTIVE = True
    log.info("CPU mode active: megatron-core CUDA calls redirected to CPU (gloo, fp32)")
    return True


__all__ = ["activate", "is_active", "cuda_available", "NullStream", "NullEvent", "CudaToCpuMode"]

