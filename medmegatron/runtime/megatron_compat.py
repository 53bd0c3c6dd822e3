"""Fixes for megatron-core 0.16.1 paths that break without Apex/Transformer Engine (CPU, plain torch).

Unlike CPU mode (which redirects CUDA calls), these are bugs in megatron-core's non-Apex code
paths; they apply whenever `HAVE_APEX_OR_TE` is false in megatron's optimizer, on any device, and
each is a no-op otherwise. Remove an entry once the pinned megatron-core fixes it.
"""

from __future__ import annotations

import functools

_APPLIED = False


def _keep_torch_adam_step_on_reshardable_load() -> None:
    """Loading a 'fully_reshardable' distributed-optimizer checkpoint into torch Adam.

    `load_parameter_state_from_fully_reshardable` deliberately drops the per-parameter "step"
    from the loaded tensors (torch Adam's step is restored through the param groups), but
    `_set_main_param_and_optimizer_states` then copies every key of the live optimizer state,
    including "step", and fails with KeyError. We leave the live step tensor out of that copy.
    """
    from megatron.core.optimizer import distrib_optimizer as do

    if do.HAVE_APEX_OR_TE:
        return
    original = do.DistributedOptimizer._set_main_param_and_optimizer_states

    @functools.wraps(original)
    def set_states(self, model_param, tensors):
        if "step" in tensors or self.config.use_precision_aware_optimizer_no_fp8_or_ds_fp8:
            return original(self, model_param, tensors)
        group_index, group_order = self.model_param_group_index_map[model_param]
        main_param = self.optimizer.param_groups[group_index]["params"][group_order]
        state = self.optimizer.state[main_param]
        step = state.pop("step", None)
        try:
            return original(self, model_param, tensors)
        finally:
            if step is not None:
                state["step"] = step

    do.DistributedOptimizer._set_main_param_and_optimizer_states = set_states


def _unshare_torch_adam_step_after_load() -> None:
    """Give each parameter its own Adam step counter after a distributed-optimizer load.

    Without Apex/TE, `DistributedOptimizer.load_state_dict` assigns one `step` tensor object to
    every parameter's state. torch Adam increments `state["step"]` in place per parameter, so
    after a resume the shared counter advances once per parameter per step, the bias
    correction is wrong, and the resumed loss curve drifts from the uninterrupted one (seen at
    the second step after resuming). Cloning the counter per parameter restores exact resume.
    """
    from megatron.core.optimizer import distrib_optimizer as do

    if do.HAVE_APEX_OR_TE:
        return
    original = do.DistributedOptimizer.load_state_dict

    @functools.wraps(original)
    def load_state_dict(self, state_dict):
        result = original(self, state_dict)
        for state in self.optimizer.state.values():
            if "step" in state:
                state["step"] = state["step"].clone()
        return result

    do.DistributedOptimizer.load_state_dict = load_state_dict


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    _keep_torch_adam_step_on_reshardable_load()
    _unshare_torch_adam_step_after_load()
    _APPLIED = True
