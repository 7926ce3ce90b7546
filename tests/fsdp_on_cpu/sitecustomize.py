"""Lets accelerate 1.16 build FSDP on the CPU, for tests/test_fsdp.py only (it puts this folder on PYTHONPATH).

accelerate's AcceleratorState turns the FSDP plugin into `DistributedType.FSDP` only when the process group is on
an accelerator device (MULTI_GPU, MULTI_XPU, MULTI_NPU, ...). Under `use_cpu` the state is MULTI_CPU (gloo), and
the plugin is dropped, so the ranks train DDP replicas. Everything after that gate (the wrap policy read off the
model's `_no_split_modules`, `fully_shard` over gloo, the full state dict gathered for the save) runs on the CPU
as is; this hook does only what the gate skips. Where accelerate already chose FSDP it changes nothing.
"""

import os

if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" and "LOCAL_RANK" in os.environ:
    from accelerate import state as _state
    from accelerate.utils import DistributedType as _DistributedType

    _accelerator_state_init = _state.AcceleratorState.__init__

    def _init_with_fsdp_on_cpu(self, *args, **kwargs):
        _accelerator_state_init(self, *args, **kwargs)
        plugin = kwargs.get("fsdp_plugin")
        if plugin is not None and self.distributed_type == _DistributedType.MULTI_CPU:
            # the three steps of the gated branch in AcceleratorState.__init__
            if self._mixed_precision != "no":
                plugin.set_mixed_precision(self._mixed_precision)
            self.distributed_type = _DistributedType.FSDP
            self.fsdp_plugin = plugin
            _state.PartialState._shared_state["distributed_type"] = _DistributedType.FSDP

    _state.AcceleratorState.__init__ = _init_with_fsdp_on_cpu
