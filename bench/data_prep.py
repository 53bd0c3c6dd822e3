"""Speed and quality targets of data_prep (issue #3). Run by hand, not in tests:

    .venv/bin/python bench/data_prep.py [--quick]

Prints progress, then as its LAST line one JSON object with
tokenize_speedup_vs_baseline, minhash_docs_per_s_core_112, minhash_docs_per_s_core_9000,
dedup_precision, dedup_recall, suffix_array_mb_per_s (+ extra keys).

Text: PubMedQA abstracts from ../shared when present (real vocabulary), else the project's generated
corpus. Documents are built by sampling sentences, so they are distinct.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sentence_pool() -> tuple[list[str], str]:
    from medmegatron.paths import pubmedqa_dir

    folder = pubmedqa_dir()
    if folder:
        data = json.loads((folder / "ori_pqal.json").read_text())
        texts = [" ".join(r["CONTEXTS"] + [r.get("LONG_ANSWER", "")]) for r in data.values()]
        origin = "pubmedqa"
    else:
        from data_prep.readers.synthetic import synthetic_corpus

        texts = [d.text for s in ("pubmed", "clinical", "general") for d in synthetic_corpus(s, 2000)]
        origin = "synthetic"
    sentences = [s for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if len(s) > 20]
    return sentences, origin


def make_docs(sentences, n, seed, lo=3, hi=12) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(sentences) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


# ------------------------------------------------------------------------------- tokenization
def _baseline_worker_init(path):
    global _TOK
    from medmegatron.tokenizers import load_tokenizer

    _TOK = load_tokenizer(path)


def _baseline_encode(line):
    """Megatron-LM preprocess_data.py `Encoder.encode`: json.loads, tokenize, append EOD."""
    data = json.loads(line)
    ids = _TOK.tokenize(data["text"])
    ids.append(_TOK.eod)
    return ids, len(line)


def baseline_preprocess(input_path, tokenizer_path, prefix, workers) -> dict:
    """Faithful re-implementation of preprocess_data.py: Pool.imap(chunksize 32), one writer."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    from data_prep.indexed_writer import token_dtype
    from medmegatron.tokenizers import load_tokenizer

    vocab = load_tokenizer(tokenizer_path).vocab_size
    with open(input_path, encoding="utf-8") as fin:
        pool = mp.get_context("fork").Pool(workers, initializer=_baseline_worker_init,
                                           initargs=(tokenizer_path,))
        encoded = pool.imap(_baseline_encode, fin, 32)
        builder = IndexedDatasetBuilder(f"{prefix}.bin", dtype=token_dtype(vocab))
        n = tokens = 0
        for doc, _ in encoded:
            builder.add_document(doc, [len(doc)])
            n += 1
            tokens += len(doc)
        builder.finalize(f"{prefix}.idx")
        pool.close()
        pool.join()
    return {"documents": n, "tokens": tokens}


def _peak_rss_run(code: str) -> dict:
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


MEM_CODE = """
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {repo!r})
mode, inp, prefix = {mode!r}, {inp!r}, {prefix!r}
import bench.data_prep as b
from medmegatron.tokenizers import load_tokenizer
load_tokenizer(None)
def cpu():
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
c0 = cpu()
t = time.time()
if mode == "ours":
    from data_prep.tokenize import tokenize_files
    r = tokenize_files([inp], None, prefix, workers=2, force=True, progress=False)
else:
    r = b.baseline_preprocess(inp, None, prefix, 2)
dt = time.time() - t
cpu_s = cpu() - c0
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({{"seconds": dt, "cpu_seconds": cpu_s, "tokens": r["tokens"], "documents": r["documents"],
                  "parent_peak_mb": self_kb / 1024, "worker_peak_mb": child_kb / 1024}}))
"""


def bench_tokenize(sentences, tmp: Path, n_docs: int) -> dict:
    from data_prep.encoders import build_encoder, resolve_encoder

    res = {}
    for scale, n in (("1x", n_docs), ("10x", n_docs * 10)):
        path = tmp / f"tok_{scale}.jsonl"
        with open(path, "w") as fh:
            for i, d in enumerate(make_docs(sentences, n, seed=n, lo=1, hi=6)):
                fh.write(json.dumps({"id": i, "text": d}) + "\n")
        runs = {"baseline": [], "ours": []}
        for _ in range(2):  # interleaved, best of 2: the machine may be shared
            for mode in ("baseline", "ours"):
                runs[mode].append(_peak_rss_run(MEM_CODE.format(
                    repo=str(REPO), mode=mode, inp=str(path), prefix=str(tmp / f"{mode}_{scale}"))))
        for mode in ("baseline", "ours"):
            r = dict(min(runs[mode], key=lambda x: x["seconds"]))
            r["cpu_seconds"] = min(x["cpu_seconds"] for x in runs[mode])
            res[f"{mode}_{scale}"] = r
            log(f"tokenize {mode:8s} {scale:3s}: {n:,} docs {r['tokens']:,} tokens "
                f"{r['tokens'] / r['seconds'] / 1e6:.2f} M tok/s wall, "
                f"{r['tokens'] / r['cpu_seconds'] / 1e6:.2f} M tok/CPU-s, parent peak "
                f"{r['parent_peak_mb']:.0f} MB, worker peak {r['worker_peak_mb']:.0f} MB")
        a = (tmp / f"baseline_{scale}.bin").read_bytes()
        assert a == (tmp / f"ours_{scale}.bin").read_bytes(), "outputs differ from the baseline"
        assert (tmp / f"baseline_{scale}.idx").read_bytes() == (tmp / f"ours_{scale}.idx").read_bytes()
    # word-cache hit rate on the 10x corpus (how much of the speed comes from the cache)
    enc = build_encoder(resolve_encoder(None))
    texts = [json.loads(line)["text"] for line in open(tmp / "tok_10x.jsonl")][:20000]
    words = sum(len(re.findall(r" +[^ ]*", " " + t)) for t in texts)
    enc.encode_batch(texts)
    speed = {k: v["tokens"] / v["seconds"] for k, v in res.items()}
    cpu_speed = {k: v["tokens"] / v["cpu_seconds"] for k, v in res.items()}
    load = os.getloadavg()[0]
    return {
        "tokenize_speedup_vs_baseline": round(speed["ours_10x"] / speed["baseline_10x"], 2),
        "tokenize_speedup_vs_baseline_cpu_time": round(cpu_speed["ours_10x"] / cpu_speed["baseline_10x"], 2),
        "tokenize_speedup_vs_baseline_1x": round(speed["ours_1x"] / speed["baseline_1x"], 2),
        "load_average_during_tokenize": round(load, 1),
        "tokenize_mtok_per_s_ours": round(speed["ours_10x"] / 1e6, 2),
        "tokenize_mtok_per_s_baseline": round(speed["baseline_10x"] / 1e6, 2),
        "tokenize_parent_peak_mb_1x": round(res["ours_1x"]["parent_peak_mb"], 1),
        "tokenize_parent_peak_mb_10x": round(res["ours_10x"]["parent_peak_mb"], 1),
        "tokenize_baseline_parent_peak_mb_1x": round(res["baseline_1x"]["parent_peak_mb"], 1),
        "tokenize_baseline_parent_peak_mb_10x": round(res["baseline_10x"]["parent_peak_mb"], 1),
        "tokenize_docs_1x": n_docs, "tokenize_output_identical_to_baseline": True,
        "tokenize_word_cache_distinct_words_per_word": round(
            (len(enc.cache) + len(enc.split_cache)) / max(1, words), 4),
    }


# ------------------------------------------------------------------------------------ MinHash
def bench_minhash_speed(docs: list[str], num_hashes: int, bands: int, rows: int) -> float:
    """Documents per second on one core: shingling + signatures + band keys."""
    from data_prep.minhash import MinHasher, band_keys, shingles

    hasher = MinHasher(num_hashes)
    t0 = time.process_time()
    for start in range(0, len(docs), 256):
        sets = [shingles(d) for d in docs[start: start + 256]]
        band_keys(hasher.signatures(sets), bands, rows)
    return len(docs) / (time.process_time() - t0)


def _mutate(words: list[str], n_edits: int, rng: random.Random, vocab: list[str]) -> str:
    words = list(words)
    for _ in range(n_edits):
        op = rng.random()
        i = rng.randrange(len(words))
        if op < 0.6:
            words[i] = rng.choice(vocab)
        elif op < 0.8:
            words.insert(i, rng.choice(vocab))
        elif len(words) > 10:
            del words[i]
    return " ".join(words)


def bench_dedup_quality(sentences, n_base: int, num_hashes: int | None, bands: int, rows: int,
                        seed: int = 0) -> dict:
    """Planted near-duplicates with Jaccard spread over 0.5-1; pair-level precision/recall."""
    from data_prep.minhash import (MinHashConfig, MinHasher, band_keys, candidate_pairs, jaccard,
                                   near_dedup, shingles)

    rng = random.Random(seed)
    base = make_docs(sentences, n_base, seed=seed + 1, lo=6, hi=14)
    vocab = sorted({w for d in base[:200] for w in d.split()})
    docs, cluster = list(base), list(range(n_base))
    for i in range(n_base // 2):  # half the documents get 1-3 near-copies
        words = base[i].split()
        for _ in range(rng.choice([1, 1, 2, 3])):
            frac = rng.choice([0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12])
            docs.append(_mutate(words, max(0, round(frac * len(words))), rng, vocab))
            cluster.append(i)
    order = list(range(len(docs)))
    rng.shuffle(order)
    docs = [docs[i] for i in order]
    cluster = [cluster[i] for i in order]
    sets = [shingles(d) for d in docs]
    members: dict[int, list[int]] = {}
    for idx, c in enumerate(cluster):
        members.setdefault(c, []).append(idx)
    pairs_j = {}
    for m in members.values():  # distinct base documents share ~no 5-grams: pairs stay in clusters
        for a in range(len(m)):
            for b in range(a + 1, len(m)):
                pairs_j[(m[a], m[b])] = jaccard(sets[m[a]], sets[m[b]])
    cfg = MinHashConfig(threshold=0.85, bands=bands, rows=rows)
    sig = MinHasher(bands * rows, cfg.seed).signatures(sets)
    res = near_dedup(sets, cfg, signatures=sig)
    # brute-force reference of the same policy with exact Jaccard: remove j if an earlier kept
    # document has J >= 0.85 (pairs across clusters share ~no 5-grams: checked on a sample below)
    ref_keep = np.ones(len(docs), bool)
    for j in range(len(docs)):
        for i in members[cluster[j]]:
            if i >= j:
                break
            if ref_keep[i] and pairs_j[(i, j)] >= 0.85:
                ref_keep[j] = False
                break
    removed, ref_removed = set(np.flatnonzero(~res.keep)), set(np.flatnonzero(~ref_keep))
    tp = len(removed & ref_removed)
    cross = [jaccard(sets[a], sets[b]) for a, b in
             (rng.sample(range(len(docs)), 2) for _ in range(2000)) if cluster[a] != cluster[b]]
    keys = band_keys(sig, bands, rows)
    cand = {tuple(map(int, p)) for p in candidate_pairs(keys)}
    out = {"precision": tp / max(1, len(removed)), "recall": tp / max(1, len(ref_removed)),
           "removed": len(removed), "reference_removed": len(ref_removed), "docs": len(docs),
           "max_cross_cluster_jaccard_sampled": round(max(cross), 3)}
    for lo in (0.7, 0.8, 0.85):  # did LSH make the pair a candidate at all?
        band_pairs = [p for p, j in pairs_j.items() if j >= lo]
        out[f"candidate_recall_at_{lo}"] = sum(p in cand for p in band_pairs) / max(1, len(band_pairs))
        out[f"pairs_at_{lo}"] = len(band_pairs)
    return out


# ------------------------------------------------------------------------------ suffix array
def bench_suffix_array(sentences, sizes_mb: tuple[int, ...], headline_mb: int = 16) -> dict:
    """Suffix-array CPU throughput (best of 3; data_prep.exact_substring.suffix_array, i.e.
    libdivsufsort) on word-salad text from the corpus vocabulary, by input size (it is
    cache-bound: smaller inputs sort faster per byte), and the whole exact-substring dedup
    (suffix array + linked ranks + numpy) on 16 MB of 4 kB documents."""
    from data_prep.exact_substring import duplicate_mask, suffix_array

    rng = np.random.default_rng(5)
    words = np.array([w for s in sentences[:5000] for w in s.split()], dtype=object)
    top = max(sizes_mb) * 2**20
    raw = " ".join(words[rng.integers(0, len(words), top // 6 + 1)]).encode()[:top]
    by_size = {}
    for mb in sizes_mb:
        data = raw[: mb * 2**20]
        cpu = float("inf")
        for _ in range(3):  # best of 3: the machine may be shared
            c0 = time.process_time()
            suffix_array(data)
            cpu = min(cpu, time.process_time() - c0)
        by_size[mb] = round(mb / cpu, 1)
    docs = [raw[i: i + 4000] for i in range(0, min(len(raw), 16 * 2**20), 4000)]
    t1 = time.process_time()
    duplicate_mask(docs, 100)
    full_cpu = time.process_time() - t1
    return {"suffix_array_mb_per_s": by_size[headline_mb],
            "suffix_array_headline_input_mb": headline_mb,
            "suffix_array_mb_per_s_by_input_mb": by_size,
            "exact_dedup_full_mb_per_s_core": round(sum(map(len, docs)) / 2**20 / full_cpu, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    from data_prep.minhash_plan import choose_bands_rows, detection_probability

    sentences, origin = sentence_pool()
    log(f"text: {origin}, {len(sentences):,} sentences")
    result = {"text_source": origin, "cores": os.cpu_count()}
    q = args.quick

    with tempfile.TemporaryDirectory() as d:
        result.update(bench_tokenize(sentences, Path(d), 3000 if q else 10000))

    docs = make_docs(sentences, 600 if q else 3000, seed=3, lo=6, hi=14)
    result["minhash_doc_words_mean"] = round(float(np.mean([len(x.split()) for x in docs])), 1)
    b112, r112 = 14, 8
    result["minhash_docs_per_s_core_112"] = round(bench_minhash_speed(docs, 112, b112, r112), 1)
    b9k, r9k = choose_bands_rows(0.85, 9000)
    result["minhash_docs_per_s_core_9000"] = round(bench_minhash_speed(docs[: 300 if q else 1000], 9000, b9k, r9k), 1)
    log(f"minhash: {result['minhash_docs_per_s_core_112']} docs/s/core @112, "
        f"{result['minhash_docs_per_s_core_9000']} @9000 ({b9k}x{r9k})")

    n_base = 400 if q else 2000
    q9k = bench_dedup_quality(sentences, n_base, 9000, b9k, r9k)
    q112 = bench_dedup_quality(sentences, n_base, 112, b112, r112)
    log(f"dedup quality 9000 ({b9k}x{r9k}): {q9k}")
    log(f"dedup quality 112 ({b112}x{r112}): {q112}")
    result.update({
        "dedup_precision": round(q9k["precision"], 4), "dedup_recall": round(q9k["recall"], 4),
        "dedup_bands_rows": f"{b9k}x{r9k}", "dedup_reference_removed": q9k["reference_removed"],
        "dedup_candidate_recall_at_0.85": round(q9k["candidate_recall_at_0.85"], 4),
        "dedup_candidate_recall_at_0.7": round(q9k["candidate_recall_at_0.7"], 4),
        "dedup_candidate_recall_at_0.8": round(q9k["candidate_recall_at_0.8"], 4),
        "dedup_precision_112": round(q112["precision"], 4), "dedup_recall_112": round(q112["recall"], 4),
        "dedup_candidate_recall_at_0.7_112": round(q112["candidate_recall_at_0.7"], 4),
        "dedup_candidate_recall_at_0.8_112": round(q112["candidate_recall_at_0.8"], 4),
        "s_curve_9000": {j: round(float(detection_probability(j, b9k, r9k)), 4) for j in (0.5, 0.7, 0.85, 0.95)},
    })
    sa = bench_suffix_array(sentences, (1, 4, 16) if q else (1, 4, 16, 64))
    log(f"suffix array: {sa}")
    result["load_average_at_end"] = round(os.getloadavg()[0], 1)
    result.update(sa)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
