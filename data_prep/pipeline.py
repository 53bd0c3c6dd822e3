"""The YAML pipeline: ingest -> MinHash -> exact substring -> decontaminate -> tokenize -> manifest.

Every stage is a function of (rank, world_size), as in datatrove, so the same code runs in-process,
on datatrove's `LocalPipelineExecutor` (a process pool) or on its `SlurmPipelineExecutor` (one array
job per stage, chained with `depends`) - no home-made scheduler. Per-input-file stages have one task
per input file; MinHash clustering and exact-substring dedup are single global tasks (they compare
all sources with each other); tokenization has one task per source.

Resume: each task writes its shard files atomically and then, last, a small `*.stats.json`; a task
whose stats file exists is skipped, a crashed task is redone from scratch (its shards are
deterministic). A run directory remembers the config fingerprint and refuses a different config
(use --force or a new output_dir).

Layout under output_dir:
    run_config.json                     resolved config + fingerprint
    ingest/t00000/s00000.jsonl.zst      cleaned documents of input file 0 (+ t00000.stats.json)
    minhash/t00000.keys.npy             LSH band keys per document (+ .stats.json)
    minhash/clusters.stats.json         removed documents and verified pairs
    exact/k400/t00000/s00000.jsonl.zst  after each exact-substring pass (+ k400.stats.json)
    decontam/t00000/...                 final documents (+ t00000.stats.json, contamination report)
    tokenized/<source>.bin/.idx         Megatron indexed dataset (+ .manifest.json)
    blend.json, manifest.json
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from data_prep.config import PipelineConfig, load_config
from data_prep.io import cleanup_tmp, file_sha256, write_json_atomic
from data_prep.shards import read_shard, write_shard
from medmegatron.errors import ConfigError

STAGES = ("ingest", "minhash_keys", "minhash_cluster", "exact_substring", "decontaminate",
          "tokenize", "finalize")


# ----------------------------------------------------------------------------------------- layout
class Layout:
    def __init__(self, cfg: PipelineConfig):
        self.cfg = cfg
        self.root = Path(cfg.output_dir)
        self.tasks = [(s, p) for s in cfg.sources for p in s.inputs]  # one task per input

    def stats(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        return path.with_name(path.name + ".stats.json")

    def task_dir(self, stage: str, task: int) -> Path:
        return self.root / stage / f"t{task:05d}"

    def shard_paths(self, stage: str, task: int) -> list[Path]:
        return sorted(self.task_dir(stage, task).glob("s*.jsonl.zst"))

    def tasks_of(self, source: str) -> list[int]:
        return [i for i, (s, _) in enumerate(self.tasks) if s.name == source]


def _load_stats(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _write_shards(directory: Path, docs, shard_docs: int) -> int:
    """Write `docs` (an iterable of dicts) as numbered shards; returns the number written."""
    if directory.exists():
        shutil.rmtree(directory)  # leftovers of a crashed attempt of this task
    batch, shard, total = [], 0, 0
    for d in docs:
        batch.append(d)
        if len(batch) >= shard_docs:
            write_shard(directory / f"s{shard:05d}.jsonl.zst", batch)
            total += len(batch)
            batch, shard = [], shard + 1
    if batch or shard == 0:
        write_shard(directory / f"s{shard:05d}.jsonl.zst", batch)
        total += len(batch)
    return total


# ----------------------------------------------------------------------------------------- stages
def stage_ingest(cfg: PipelineConfig, rank: int) -> None:
    """Read one input file; normalise, scrub PHI, language/length/repetition filters."""
    from data_prep.clean import LanguageFilter, filter_reason, normalize
    from data_prep.errors import ErrorPolicy
    from data_prep.phi import scrub
    from data_prep.readers import detect_format, read_input

    lay = Layout(cfg)
    stats_path = lay.stats("ingest", f"t{rank:05d}")
    if stats_path.exists():
        return
    source, inp = lay.tasks[rank]
    fmt = source.format
    if fmt == "auto":
        fmt = detect_format(inp)
    phi_on = cfg.phi.enabled and (
        source.phi if source.phi is not None
        else (source.name in cfg.phi.sources if cfg.phi.sources else fmt == "clinical_csv"))
    lang = LanguageFilter(cfg.language) if cfg.language.enabled else None
    policy = ErrorPolicy(cfg.on_error)
    removed: Counter = Counter()
    phi_counts: Counter = Counter()
    read = kept = 0

    def docs():
        nonlocal read, kept
        for doc in read_input(inp, fmt=fmt, source=source.name, text_key=source.text_key,
                              id_key=source.id_key, policy=policy):
            read += 1
            text = doc.text
            if cfg.normalize.enabled:
                text = normalize(text, cfg.normalize)
            if phi_on:
                text, counts = scrub(text, cfg.phi.types)
                phi_counts.update(counts)
            if lang is not None and not lang.keep(text):
                removed["language"] += 1
                continue
            if cfg.filters.enabled and (reason := filter_reason(text, cfg.filters)):
                removed[f"filter_{reason}"] += 1
                continue
            kept += 1
            yield {"id": doc.id, "text": text, "source": source.name}

    _write_shards(lay.task_dir("ingest", rank), docs(), cfg.shard_docs)
    write_json_atomic(stats_path, {
        "source": source.name, "input": str(inp),
        "input_sha256": file_sha256(inp) if Path(inp).exists() else None, "format": fmt,
        "read": read, "kept": kept, "removed": dict(removed), "phi_enabled": phi_on,
        "phi_replacements": dict(phi_counts), "errors": policy.as_dict()})


def _minhash_shingles(cfg, text):
    from data_prep.minhash import shingles

    return shingles(text, cfg.minhash.ngram, cfg.minhash.unit)


def stage_minhash_keys(cfg: PipelineConfig, rank: int) -> None:
    """LSH band keys of every document of one input (signatures are not kept: 9,000 x 4 bytes)."""
    from data_prep.minhash import MinHasher, band_keys

    lay = Layout(cfg)
    stats_path = lay.stats("minhash", f"t{rank:05d}")
    if stats_path.exists():
        return
    mh = cfg.minhash
    hasher = MinHasher(mh.bands * mh.rows, mh.seed)
    keys, empty = [], []
    for shard in lay.shard_paths("ingest", rank):
        sets = [_minhash_shingles(cfg, d["text"]) for d in read_shard(shard)]
        for start in range(0, len(sets), 256):
            part = sets[start: start + 256]
            keys.append(band_keys(hasher.signatures(part), mh.bands, mh.rows))
            empty.extend(len(s) == 0 for s in part)
    arr = np.concatenate(keys) if keys else np.zeros((0, mh.bands), np.uint64)
    out = lay.root / "minhash" / f"t{rank:05d}.keys.npy"
    from data_prep.io import atomic_open

    with atomic_open(out, "wb") as fh:
        np.save(fh, arr)
    with atomic_open(out.with_suffix(".empty.npy"), "wb") as fh:
        np.save(fh, np.asarray(empty, dtype=bool))
    write_json_atomic(stats_path, {"documents": int(len(arr))})


def stage_minhash_cluster(cfg: PipelineConfig, rank: int = 0) -> None:
    """Global: candidate pairs across all sources, verified by true Jaccard, greedy keep-first."""
    from data_prep.minhash import candidate_pairs, cluster_pairs

    lay = Layout(cfg)
    stats_path = lay.stats("minhash", "clusters")
    if stats_path.exists():
        return
    mh = cfg.minhash
    n_tasks = len(lay.tasks)
    key_files = [np.load(lay.root / "minhash" / f"t{t:05d}.keys.npy", mmap_mode="r")
                 for t in range(n_tasks)]
    empty = np.concatenate([np.load(lay.root / "minhash" / f"t{t:05d}.keys.empty.npy")
                            for t in range(n_tasks)]) if n_tasks else np.zeros(0, bool)
    offsets = np.concatenate([[0], np.cumsum([len(k) for k in key_files])])
    n = int(offsets[-1])
    pairs = []
    for b in range(mh.bands):  # one band at a time: memory is n x 8 bytes per band
        col = np.concatenate([k[:, b] for k in key_files])[:, None] if n else np.zeros((0, 1), np.uint64)
        p = candidate_pairs(col, mh.max_bucket_pairs, ~empty)
        if len(p):
            pairs.append(p)
    pairs = np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2), np.int64)
    # shingles of the documents that appear in a candidate pair, read shard by shard
    needed = np.unique(pairs) if len(pairs) else np.zeros(0, np.int64)
    shingle_of: dict[int, np.ndarray] = {}
    shard_start, shard_id = [], []  # global index of each shard's first document, (task, shard)
    base = 0
    for t in range(n_tasks):
        for s_idx, shard in enumerate(lay.shard_paths("ingest", t)):
            docs = read_shard(shard)
            shard_start.append(base)
            shard_id.append((t, s_idx))
            lo, hi = np.searchsorted(needed, [base, base + len(docs)])
            for g in needed[lo:hi]:
                shingle_of[int(g)] = _minhash_shingles(cfg, docs[int(g) - base]["text"])
            base += len(docs)
    shard_start = np.asarray(shard_start, dtype=np.int64)
    result = cluster_pairs(n, pairs, lambda i: shingle_of[int(i)], mh)
    removed: dict[str, list] = {}
    for g in np.flatnonzero(~result.keep):
        k = int(np.searchsorted(shard_start, g, side="right")) - 1
        t, s = shard_id[k]
        removed.setdefault(str(t), []).append([s, int(g - shard_start[k])])
    per_source: Counter = Counter()
    for t, rows in removed.items():
        per_source[lay.tasks[int(t)][0].name] += len(rows)
    write_json_atomic(stats_path, {
        "documents": n, "candidate_pairs": int(result.candidate_pairs),
        "verified_pairs": int(len(result.verified_pairs)), "removed_total": result.removed,
        "removed_per_source": dict(per_source), "removed": removed,
        "bands": mh.bands, "rows": mh.rows, "threshold": mh.threshold})


def _minhash_removed(cfg: PipelineConfig, lay: Layout) -> set:
    if not cfg.minhash.enabled:
        return set()
    st = _load_stats(lay.stats("minhash", "clusters")) or {}
    return {(int(t), s, r) for t, rows in st.get("removed", {}).items() for s, r in rows}


def _stage_source(cfg: PipelineConfig, stage: str) -> str:
    """The materialised stage whose shards the next stage reads."""
    if stage == "decontaminate":
        ks = cfg.exact_substring.thresholds if cfg.exact_substring.enabled else []
        return f"exact/k{ks[-1]}" if ks else "ingest"
    if stage == "tokenize":
        return "decontam" if cfg.decontaminate.benchmarks else _stage_source(cfg, "decontaminate")
    raise ValueError(stage)


class ShardSource:
    """Documents of a materialised stage, one shard at a time (MinHash removals applied to ingest)."""

    def __init__(self, cfg: PipelineConfig, lay: Layout, stage_dir: str):
        self.lay, self.stage_dir = lay, stage_dir
        self.removed = _minhash_removed(cfg, lay) if stage_dir == "ingest" else set()

    def paths(self, task: int) -> list[Path]:
        return self.lay.shard_paths(self.stage_dir, task)

    def load(self, task: int, shard: int) -> list[dict]:
        docs = read_shard(self.paths(task)[shard])
        if not self.removed:
            return docs
        return [d for r, d in enumerate(docs) if (task, shard, r) not in self.removed]

    def docs(self, task: int):
        for i in range(len(self.paths(task))):
            yield from self.load(task, i)


def stage_exact_substring(cfg: PipelineConfig, rank: int = 0) -> None:
    """Global: the exact-substring passes (e.g. 400 then 100 bytes), one shard = one SA unit.

    Shards are loaded on demand (a small cache of three); outputs are written shard by shard.
    """
    from data_prep.exact_substring import apply_mask, unit_masks

    lay = Layout(cfg)
    previous = "ingest"
    for k in cfg.exact_substring.thresholds:
        stage_dir = f"exact/k{k}"
        stats_path = lay.stats("exact", f"k{k}")
        if stats_path.exists():
            previous = stage_dir
            continue
        src = ShardSource(cfg, lay, previous)
        units = [(t, i) for t in range(len(lay.tasks)) for i in range(len(src.paths(t)))]
        cache: dict[int, tuple[list[dict], list[bytes]]] = {}

        def get(u: int):
            if u not in cache:
                if len(cache) >= 3:
                    cache.pop(next(iter(cache)))
                docs = src.load(*units[u])
                cache[u] = (docs, [d["text"].encode("utf-8") for d in docs])
            return cache[u]

        per_source: dict[str, Counter] = {}
        for u, masks in enumerate(unit_masks(lambda x: get(x)[1], len(units), k)):
            t, i = units[u]
            docs, raw = get(u)
            st = per_source.setdefault(lay.tasks[t][0].name, Counter())
            new_docs = []
            for d, b, m in zip(docs, raw, masks):
                st["bytes_in"] += len(b)
                cut = int(m.sum())
                if cut:
                    st["bytes_removed"] += cut
                    st["docs_changed"] += 1
                    text = apply_mask(d["text"], b, m).strip()
                    if not text:
                        st["docs_emptied"] += 1
                        continue
                    d = {**d, "text": text}
                new_docs.append(d)
            out_dir = lay.task_dir(stage_dir, t)
            if i == 0 and out_dir.exists():
                shutil.rmtree(out_dir)  # leftovers of a crashed attempt
            write_shard(out_dir / f"s{i:05d}.jsonl.zst", new_docs)
        for t in range(len(lay.tasks)):  # tasks without shards still need a directory
            lay.task_dir(stage_dir, t).mkdir(parents=True, exist_ok=True)
        write_json_atomic(stats_path, {"k": k, "per_source": {s: dict(c) for s, c in per_source.items()}})
        previous = stage_dir


def stage_decontaminate(cfg: PipelineConfig, rank: int) -> None:
    from data_prep.decontam import build_index

    lay = Layout(cfg)
    stats_path = lay.stats("decontam", f"t{rank:05d}")
    if stats_path.exists():
        return
    dc = cfg.decontaminate
    index = build_index(dc)
    report, flagged = [], 0

    def docs():
        nonlocal flagged
        for d in ShardSource(cfg, lay, _stage_source(cfg, "decontaminate")).docs(rank):
            hits = index.match(d["text"], dc.min_matches)
            if hits:
                flagged += 1
                report.append({"id": d["id"], "source": d["source"],
                               "matches": [{"item": i, "ngrams": c} for i, c in hits[:10]]})
                if dc.action == "remove":
                    continue
            yield d

    kept = _write_shards(lay.task_dir("decontam", rank), docs(), cfg.shard_docs)
    write_json_atomic(lay.root / "decontam" / f"t{rank:05d}.report.json", report)
    write_json_atomic(stats_path, {"source": lay.tasks[rank][0].name, "flagged": flagged,
                                   "removed": flagged if dc.action == "remove" else 0,
                                   "kept": kept, "benchmark_items": len(index)})


def stage_tokenize(cfg: PipelineConfig, rank: int) -> None:
    """One source -> tokenized/<source>.bin/.idx (+ manifest)."""
    from data_prep.manifest import build_manifest, write_manifest
    from data_prep.readers.document import Document
    from data_prep.tokenize import tokenize_parallel
    from medmegatron.tokenizers import bundled_llama2_tokenizer, tokenizer_fingerprint

    lay = Layout(cfg)
    source = cfg.sources[rank]
    stats_path = lay.stats("tokenized", source.name)
    prefix = lay.root / "tokenized" / source.name
    if _tokenized_intact(stats_path, prefix):
        return
    stage_dir = _stage_source(cfg, "tokenize")

    def docs():
        src = ShardSource(cfg, lay, stage_dir)
        for t in lay.tasks_of(source.name):
            for d in src.docs(t):
                yield Document(id=d["id"], text=d["text"], source=d["source"])

    tok_path = Path(cfg.tokenize.tokenizer) if cfg.tokenize.tokenizer else bundled_llama2_tokenizer()
    workers = cfg.tokenize.workers or cfg.executor.workers
    counts = tokenize_parallel(docs(), tok_path, prefix, workers=workers)
    tok_hash = tokenizer_fingerprint(tok_path)
    manifest = build_manifest(
        "tokenized", config=dataclasses.asdict(cfg),
        inputs={str(lay.tasks[t][1]): _load_stats(lay.stats("ingest", f"t{t:05d}"))["input_sha256"]
                for t in lay.tasks_of(source.name)},
        counts={"documents": counts["documents"], "tokens": counts["tokens"]},
        tokenizer={"path": str(tok_path), "sha256": tok_hash, "encoder": counts["encoder"]},
        outputs={"bin": f"{prefix}.bin", "idx": f"{prefix}.idx"})
    write_manifest(prefix, manifest)
    write_json_atomic(stats_path, {"documents": counts["documents"], "tokens": counts["tokens"],
                                   "tokenizer_sha256": tok_hash,
                                   "bytes": {s: Path(f"{prefix}{s}").stat().st_size for s in (".bin", ".idx")}})


def _tokenized_intact(stats_path: Path, prefix: Path) -> bool:
    """Finished earlier and its files are still there, at the sizes written (a deleted or
    truncated output is redone rather than trusted)."""
    stats = _load_stats(stats_path)
    if stats is None:
        return False
    sizes = stats.get("bytes", {})
    return all(Path(f"{prefix}{s}").exists() and Path(f"{prefix}{s}").stat().st_size == sizes.get(s)
               for s in (".bin", ".idx"))


def stage_finalize(cfg: PipelineConfig, rank: int = 0) -> None:
    """Run manifest (per-source counts and per-step removals) and the blend."""
    lay = Layout(cfg)
    sources: dict[str, dict] = {}
    inputs = {}
    for t, (src, inp) in enumerate(lay.tasks):
        st = _load_stats(lay.stats("ingest", f"t{t:05d}"))
        s = sources.setdefault(src.name, {"read": 0, "removed": Counter(), "phi_replacements": Counter(),
                                          "skipped_records": Counter()})
        s["read"] += st["read"]
        s["removed"].update(st["removed"])
        s["phi_replacements"].update(st["phi_replacements"])
        s["skipped_records"].update(st["errors"]["skipped"])
        inputs[str(inp)] = st["input_sha256"]
        if cfg.decontaminate.benchmarks:
            dst = _load_stats(lay.stats("decontam", f"t{t:05d}"))
            s["removed"]["decontaminate"] += dst["removed"]
            s.setdefault("contaminated_flagged", 0)
            s["contaminated_flagged"] += dst["flagged"]
    if cfg.minhash.enabled:
        mst = _load_stats(lay.stats("minhash", "clusters"))
        for name, n in mst["removed_per_source"].items():
            sources[name]["removed"]["minhash_near_duplicate"] += n
    if cfg.exact_substring.enabled:
        for k in cfg.exact_substring.thresholds:
            est = _load_stats(lay.stats("exact", f"k{k}"))
            for name, c in est["per_source"].items():
                sources[name]["removed"][f"exact_substring_{k}_emptied_docs"] += c.get("docs_emptied", 0)
                sources[name].setdefault("exact_substring_bytes_removed", {})[str(k)] = c.get("bytes_removed", 0)
    tok_hash = None
    token_counts = {}
    for src in cfg.sources:
        if cfg.tokenize.enabled:
            tst = _load_stats(lay.stats("tokenized", src.name))
            sources[src.name]["documents"] = tst["documents"]
            sources[src.name]["tokens"] = tst["tokens"]
            token_counts[src.name] = tst["tokens"]
            tok_hash = tst["tokenizer_sha256"]
    for s in sources.values():
        for key in ("removed", "phi_replacements", "skipped_records"):
            s[key] = dict(s[key])
    blend = None
    if cfg.blend is not None and token_counts:
        from data_prep.blend import compute_blend

        b = cfg.blend
        blend = compute_blend(
            token_counts, {n: str(lay.root / "tokenized" / n) for n in token_counts},
            ratios=b.ratios, budgets=b.budgets, replay=b.replay, train_tokens=b.train_tokens)
        write_json_atomic(lay.root / "blend.json", blend)
    from data_prep.manifest import build_manifest

    manifest = build_manifest(
        "pipeline", inputs=inputs, config=dataclasses.asdict(cfg),
        counts={"documents": sum(s.get("documents", 0) for s in sources.values()),
                "tokens": sum(s.get("tokens", 0) for s in sources.values())},
        steps={"per_source": sources},
        tokenizer={"path": cfg.tokenize.tokenizer, "sha256": tok_hash} if tok_hash else None,
        outputs={"tokenized": {n: str(lay.root / "tokenized" / n) for n in token_counts},
                 "blend": str(lay.root / "blend.json") if blend else None})
    write_json_atomic(lay.root / "manifest.json", manifest)


_STAGE_FUNCS = {"ingest": stage_ingest, "minhash_keys": stage_minhash_keys,
                "minhash_cluster": stage_minhash_cluster, "exact_substring": stage_exact_substring,
                "decontaminate": stage_decontaminate, "tokenize": stage_tokenize,
                "finalize": stage_finalize}


class StageTask:
    """A picklable datatrove pipeline step: `(data, rank, world_size)` -> runs one stage task."""

    def __init__(self, cfg: PipelineConfig, stage: str):
        self.cfg, self.stage = cfg, stage

    def __call__(self, data=None, rank: int = 0, world_size: int = 1):
        _STAGE_FUNCS[self.stage](self.cfg, rank)


def planned_stages(cfg: PipelineConfig) -> list[tuple[str, int]]:
    """(stage, number of tasks) in order, skipping disabled steps."""
    n_in = len(Layout(cfg).tasks)
    plan = [("ingest", n_in)]
    if cfg.minhash.enabled:
        plan += [("minhash_keys", n_in), ("minhash_cluster", 1)]
    if cfg.exact_substring.enabled and cfg.exact_substring.thresholds:
        plan.append(("exact_substring", 1))
    if cfg.decontaminate.benchmarks:
        plan.append(("decontaminate", n_in))
    if cfg.tokenize.enabled:
        plan.append(("tokenize", len(cfg.sources)))
    plan.append(("finalize", 1))
    return plan


def _input_stamps(cfg: PipelineConfig) -> dict:
    """Size and mtime of every input (cheap; content hashes go in the manifest)."""
    out = {}
    for s in cfg.sources:
        for p in s.inputs:
            path = Path(p)
            if path.is_file():
                st = path.stat()
                out[str(p)] = [st.st_size, st.st_mtime_ns]
            elif path.is_dir():
                files = [f for f in path.rglob("*") if f.is_file()]
                out[str(p)] = [len(files), max((f.stat().st_mtime_ns for f in files), default=0)]
    return out


def _same_content_as_ingested(cfg: PipelineConfig, path: str) -> bool:
    """A file whose size/mtime changed (rewritten, touched, copied back) but whose content is what
    its finished ingest task read - or that no finished task has read yet - is safe to resume with."""
    lay = Layout(cfg)
    tasks = [t for t, (_, inp) in enumerate(lay.tasks) if str(inp) == path]
    if not tasks or not Path(path).is_file():
        return False
    stats = [_load_stats(lay.stats("ingest", f"t{t:05d}")) for t in tasks]
    if all(st is None for st in stats):
        return True
    return all(st is not None and st.get("input_sha256") == file_sha256(path) for st in stats)


def _prepare_run_dir(cfg: PipelineConfig, force: bool) -> Path:
    root = Path(cfg.output_dir)
    marker = root / "run_config.json"
    fp = cfg.fingerprint()
    stamps = _input_stamps(cfg)
    if marker.exists():
        old = json.loads(marker.read_text())
        if force:
            shutil.rmtree(root)
        elif old.get("fingerprint") != fp:
            raise ConfigError(
                f"{root} holds a run with a different config (fingerprint {old.get('fingerprint')} "
                f"!= {fp}); use a new output_dir, or --force to delete it and start over")
        elif old.get("inputs") != stamps:
            changed = sorted(k for k in set(stamps) | set(old.get("inputs", {}))
                             if stamps.get(k) != old.get("inputs", {}).get(k))
            changed = [k for k in changed if not _same_content_as_ingested(cfg, k)]
            if changed:
                raise ConfigError(
                    f"{root}: inputs changed since this run started ({changed[:5]}); resuming would "
                    "mix old and new data - use --force to start over or a new output_dir")
    elif root.exists() and any(root.iterdir()):
        raise ConfigError(f"output_dir {root} exists and is not a medmegatron prep run; "
                          "choose an empty or new directory")
    root.mkdir(parents=True, exist_ok=True)
    cleanup_tmp(root)
    write_json_atomic(marker, {"fingerprint": fp, "inputs": stamps,
                               "config": dataclasses.asdict(cfg)})
    return root


def run_pipeline(cfg: PipelineConfig, force: bool = False, stop_after: str | None = None) -> dict:
    """Run (or resume) every stage; returns the run manifest (or the submitted Slurm jobs)."""
    import sys

    root = _prepare_run_dir(cfg, force)
    ex = cfg.executor
    if cfg.minhash.enabled:  # the S-curve of the chosen bands x rows, with a warning if too steep
        from data_prep.minhash_plan import check_plan

        print(check_plan(cfg.minhash.bands, cfg.minhash.rows, cfg.minhash.threshold).format(),
              file=sys.stderr)
    if ex.kind == "slurm":
        return _submit_slurm(cfg, root)
    from tqdm import tqdm

    for stage, tasks in tqdm(planned_stages(cfg), desc="prep stages", unit="stage"):
        workers = min(ex.workers, tasks)
        if workers > 1 and stage in ("ingest", "minhash_keys", "decontaminate"):
            from datatrove.executor import LocalPipelineExecutor

            import contextlib

            # datatrove logs every task at INFO to stderr; send that to a file beside its logs
            (root / "logs").mkdir(parents=True, exist_ok=True)
            with open(root / "logs" / f"{stage}.stderr.log", "a") as log, \
                    contextlib.redirect_stderr(log):
                _quiet_datatrove()
                LocalPipelineExecutor(pipeline=[StageTask(cfg, stage)], tasks=tasks,
                                      workers=workers, logging_dir=str(root / "logs" / stage),
                                      start_method="fork").run()
        else:  # global stages, tokenization (parallel inside) and single tasks: in process
            for rank in range(tasks):
                StageTask(cfg, stage)(None, rank, tasks)
        if stage == stop_after:
            return {"stopped_after": stage}
    return json.loads((root / "manifest.json").read_text())


def _quiet_datatrove() -> None:
    """datatrove logs every task to stderr at INFO; keep warnings (its per-task logs stay on disk)."""
    import sys

    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def _submit_slurm(cfg: PipelineConfig, root: Path) -> dict:
    """One datatrove SlurmPipelineExecutor per stage, each depending on the previous one."""
    from datatrove.executor import SlurmPipelineExecutor

    ex = cfg.executor
    previous = None
    for stage, tasks in planned_stages(cfg):
        previous = SlurmPipelineExecutor(
            pipeline=[StageTask(cfg, stage)], tasks=tasks, time=ex.slurm_time,
            partition=ex.slurm_partition, cpus_per_task=ex.slurm_cpus_per_task,
            mem_per_cpu_gb=ex.slurm_mem_per_cpu_gb, job_name=f"prep-{stage}",
            logging_dir=str(root / "logs" / stage), depends=previous, venv_path=ex.slurm_venv)
    previous.run()  # launches the chain of dependencies
    return {"submitted": [s for s, _ in planned_stages(cfg)], "logs": str(root / "logs")}


def run_pipeline_file(path: str, force: bool = False) -> dict:
    cfg = load_config(path)
    manifest = run_pipeline(cfg, force=force)
    if "steps" not in manifest:  # submitted to Slurm
        return manifest
    summary = {"output_dir": cfg.output_dir, "documents": manifest["counts"]["documents"],
               "tokens": manifest["counts"]["tokens"], "per_source": manifest["steps"]["per_source"]}
    blend_path = Path(cfg.output_dir) / "blend.json"
    if cfg.blend is not None and blend_path.exists():
        import sys

        from data_prep.blend import format_blend

        blend = json.loads(blend_path.read_text())
        print(format_blend(blend), file=sys.stderr)
        summary["blend"] = {"path": str(blend_path), "epochs": blend["epochs"],
                            "warnings": blend["warnings"]}
    return summary
