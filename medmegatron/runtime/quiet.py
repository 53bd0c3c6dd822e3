"""Silence warnings that are expected and not actionable on our supported set-ups.

Each rank of a CPU run would otherwise print ~20 lines about missing Transformer Engine/Apex
(GPU-only, deliberately absent on CPU) and about torch collectives megatron-core still calls by
their old names. Real warnings still show; MEDMEGATRON_ALL_WARNINGS=1 shows everything.
"""

from __future__ import annotations

import os
import warnings

EXPECTED = (
    (UserWarning, r"Transformer Engine and Apex are not installed"),
    (UserWarning, r"Apex is not installed"),
    (UserWarning, r"When using async grad allreduce it is recommended to set the environment variable CUDA_DEVICE_MAX_CONNECTIONS"),
    (UserWarning, r"full scope is deprecated"),
    (FutureWarning, r"`torch\.distributed\.(all_gather_into_tensor|reduce_scatter_tensor)` is deprecated"),
    # megatron-core 0.16's dist-checkpoint loader still uses torch's ShardedTensor/load_state_dict
    (FutureWarning, r"`load_state_dict` is deprecated"),
    (FutureWarning, r"Please use DTensor instead and we are deprecating ShardedTensor"),
    # megatron-core's DDP reads `.grad` of its main-grad views when resuming
    (UserWarning, r"The \.grad attribute of a Tensor that is not a leaf Tensor is being accessed"),
)


def quiet_expected_warnings() -> None:
    if os.environ.get("MEDMEGATRON_ALL_WARNINGS") == "1":
        return
    for category, message in EXPECTED:
        warnings.filterwarnings("ignore", message=message, category=category)
