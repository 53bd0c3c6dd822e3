"""`medmegatron pipeline`: raw corpus -> evaluated model as one resumable chain with provenance.

A pipeline YAML names stages (data prep, SFT data, import, train, export, merge, eval); a stage
refers to another's outputs as `${stage}` or `${stage.output}`, which is also how the order is
found. Each stage is one `medmegatron ...` command run through an executor (local torchrun or
Slurm through NeMo-Run, as the recipes launch), so every stage can be rerun by hand.

Skipping and provenance work like a build system with content hashes (Bazel/DVC style, not
make's timestamps): a stage's fingerprint hashes its resolved config, the content of its
external inputs and the content digests of the upstream outputs it uses. A stage is skipped when
its record under `RUN/.pipeline/` has that fingerprint and its outputs still hash to what was
recorded. A rebuilt upstream artifact that comes out byte-identical therefore does not rerun its
dependents. Interrupted stages are rerun in place and resume (training from its last
checkpoint, data prep from its finished tasks).
"""
