"""Conversion speed and memory on a synthetic ~1B-parameter Llama (issue #5). Run by hand:

    .venv/bin/python bench/conversion.py [--layers 20] [--workdir DIR] [--keep]

Builds a random bf16 model (hidden 2048, 16 heads / 8 KV groups, ffn 5632, vocab 32000; 20 layers
= 1.07B parameters) as 512 MB safetensors shards, written tensor by tensor with the converter's
own streaming writer. Then, each in a fresh process so its peak RSS is its own:
  * plain sequential read of the same shard files (16 MB blocks) - the speed baseline,
  * `convert import` (HF -> dist checkpoint) and `convert export` (dist checkpoint -> HF).
Files are warm in the page cache for all three, so the ratio compares the converter's work
against reading alone. throughput_vs_read is the slower of import/export (bytes per second
relative to the read); peak_rss_gb is the larger of the two conversions' peak RSS.

Prints progress on stderr and, as its LAST line, one JSON object:
{"throughput_vs_read": x, "peak_rss_gb": y, "largest_tensor_gb": z}
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_model(out: Path, layers: int) -> tuple[int, int]:
    """Write the synthetic model; return (total bytes, largest tensor bytes)."""
    import torch

    from conversion.safetensors_io import ShardedWriter

    h, heads, groups, ffn, vocab = 2048, 16, 8, 5632, 32000
    hd = h // heads
    shapes = [("model.embed_tokens.weight", (vocab, h))]
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes += [(p + "input_layernorm.weight", (h,)),
                   (p + "self_attn.q_proj.weight", (heads * hd, h)),
                   (p + "self_attn.k_proj.weight", (groups * hd, h)),
                   (p + "self_attn.v_proj.weight", (groups * hd, h)),
                   (p + "self_attn.o_proj.weight", (h, heads * hd)),
                   (p + "post_attention_layernorm.weight", (h,)),
                   (p + "mlp.gate_proj.weight", (ffn, h)),
                   (p + "mlp.up_proj.weight", (ffn, h)),
                   (p + "mlp.down_proj.weight", (h, ffn))]
    shapes += [("model.norm.weight", (h,)), ("lm_head.weight", (vocab, h))]
    out.mkdir(parents=True)
    writer = ShardedWriter(out, [(n, s, torch.bfloat16) for n, s in shapes], max_shard_bytes=512 << 20)
    gen = torch.Generator().manual_seed(0)
    for name, shape in shapes:
        writer.write(name, (torch.randn(shape, generator=gen) * 0.02).to(torch.bfloat16))
    writer.finish()
    (out / "checksums.sha256").unlink()  # like a downloaded HF model: no checksums to verify
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
              "intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": heads,
              "num_key_value_heads": groups, "vocab_size": vocab, "rms_norm_eps": 1e-5,
              "rope_theta": 500000.0, "max_position_embeddings": 8192, "tie_word_embeddings": False,
              "torch_dtype": "bfloat16"}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    sizes = [2 * s[0] * (s[1] if len(s) > 1 else 1) for _, s in shapes]
    return sum(sizes), max(sizes)


def run_child(setup: str, work: str) -> tuple[float, float]:
    """Run `setup` then timed `work` in a fresh python; return (work seconds, peak RSS GB).

    Interpreter start-up and imports (a few seconds, the same for any model size) are outside
    the timed part, for the read baseline and the conversions alike.
    """
    timing = Path(tempfile.mktemp(suffix=".time"))
    code = (f"{setup}\nimport time\n_t = time.perf_counter()\n{work}\n"
            f"open({str(timing)!r}, 'w').write(str(time.perf_counter() - _t))")
    proc = subprocess.Popen([PY, "-c", code], cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"child failed ({status}): {work}")
    elapsed = float(timing.read_text())
    timing.unlink()
    return elapsed, usage.ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


READ = ("from pathlib import Path", """
view = memoryview(bytearray(16 << 20))
for path in sorted(Path({folder!r}).glob('*.safetensors')):
    with open(path, 'rb', buffering=0) as f:
        while f.readinto(view):
            pass
""")
COPY = ("import os, shutil\nfrom pathlib import Path", """
out = Path({out!r}); out.mkdir()
for path in sorted(Path({folder!r}).glob('*.safetensors')):
    shutil.copyfile(path, out / path.name)
    fd = os.open(out / path.name, os.O_RDONLY); os.fsync(fd); os.close(fd)
""")
IMPORT = ("from conversion.importer import import_hf", "import_hf({src!r}, {dst!r}, tp=1)")
EXPORT = ("from conversion.exporter import export_hf\nimport medmegatron.training.checkpointing",
          "export_hf({src!r}, {dst!r})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=20, help="20 layers = 1.07B parameters")
    parser.add_argument("--workdir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_conversion_"))
    hf, ckpt, back = work / "hf", work / "ckpt", work / "hf_export"
    for path in (hf, ckpt, back, work / "copy"):
        shutil.rmtree(path, ignore_errors=True)
    try:
        log(f"writing synthetic model ({args.layers} layers) to {hf} ...")
        total, largest = make_model(hf, args.layers)
        log(f"  {total / 1e9:.2f} GB in {len(list(hf.glob('*.safetensors')))} shards, "
            f"largest tensor {largest / 1e9:.3f} GB")
        read_s = min(run_child(READ[0], READ[1].format(folder=str(hf)))[0] for _ in range(2))
        log(f"plain sequential read: {read_s:.2f} s ({total / read_s / 1e9:.2f} GB/s)")
        copy_s = run_child(COPY[0], COPY[1].format(folder=str(hf), out=str(work / "copy")))[0]
        shutil.rmtree(work / "copy")
        log(f"plain copy (read + write + fsync, for context: the disk's write speed bounds any "
            f"converter): {copy_s:.2f} s ({total / copy_s / 1e9:.2f} GB/s)")
        import_s, import_rss = run_child(IMPORT[0], IMPORT[1].format(src=str(hf), dst=str(ckpt)))
        log(f"import: {import_s:.2f} s ({total / import_s / 1e9:.2f} GB/s), peak RSS {import_rss:.2f} GB")
        export_s, export_rss = run_child(EXPORT[0], EXPORT[1].format(src=str(ckpt), dst=str(back)))
        log(f"export: {export_s:.2f} s ({total / export_s / 1e9:.2f} GB/s), peak RSS {export_rss:.2f} GB")
        target = 3 * largest / 1024**3 + 1.5
        peak = max(import_rss, export_rss)
        log(f"peak RSS target: < 3 x largest tensor + 1.5 GB = {target:.2f} GB -> "
            f"{'met' if peak < target else 'MISSED'}; import/export vs read: "
            f"{read_s / import_s:.3f} / {read_s / export_s:.3f}; vs plain copy: "
            f"{copy_s / import_s:.3f} / {copy_s / export_s:.3f}")
        print(json.dumps({"throughput_vs_read": round(read_s / max(import_s, export_s), 4),
                          "peak_rss_gb": round(peak, 3),
                          "largest_tensor_gb": round(largest / 1024**3, 4)}))
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
