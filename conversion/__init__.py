"""HF <-> megatron-core checkpoint conversion (`medmegatron convert import|export|verify`).

Modules, one job each:
    hf_config      HF `config.json` <-> our `ModelConfig` (families, refusals, round trip)
    layout         the mapping tables and tensor layout rules (QKV interleave, [gate; up], vocab
                   padding, expert/layer axes, `_extra_state` objects) - the one place they live
    safetensors_io reading HF shards one tensor at a time; streaming sharded writer with index
    dist_ckpt      streaming writer/reader of megatron-core's `torch_dist` dist-checkpoint format
    importer       HF directory -> dist checkpoint that `load_weights` reads at any layout
    exporter       dist checkpoint (imported or trainer-written, any layout) -> HF directory
    verify         logit parity between `transformers` and megatron-core on one token batch
    errors         ConversionError (a UserFacingError: printed by the CLI without a traceback)
"""
