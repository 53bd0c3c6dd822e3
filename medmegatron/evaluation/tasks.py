"""Medical QA tasks for lm-eval over local files only: normalise, then write task YAMLs.

The harness's own medical tasks download from the hub (and `bigbio/pubmed_qa` no longer loads
with datasets >= 4). Here every dataset comes from a path the user gives; it is normalised to one
JSONL schema {question, context, choices, letters, answer_index} and each becomes two lm-eval
tasks: `<name>_letter` (score the option letter) and `<name>_text` (score the full answer text,
Med42's choice, reported as length-normalised `acc_norm`). PubMedQA is scored on its yes/no/maybe
text only.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from medmegatron.errors import UserFacingError

FORMATS = ("pubmedqa", "medqa", "medmcqa", "mmlu", "mcq")
HOW_TO_GET = {
    "pubmedqa": "PubMedQA PQA-L: a folder with ori_pqal.json and test_ground_truth.json (MIT licence)",
    "medqa": "MedQA (USMLE) JSONL with question, options {A..E} and answer_idx (e.g. GBaker/MedQA-USMLE-4-options)",
    "medmcqa": "MedMCQA JSON/JSONL with question, opa..opd and cop (validation split is the usual test set)",
    "mmlu": "an MMLU subject as JSONL with question, choices [4] and answer (index)",
    "mcq": "your JSONL with question, options (list or {letter: text}) and answer (letter or index)",
}


# The MMLU subjects Med42 reports as its medical subset.
MED42_MMLU_SUBJECTS = (
    "anatomy", "clinical_knowledge", "college_medicine", "medical_genetics", "professional_medicine",
    "college_biology", "high_school_biology", "professional_psychology", "high_school_psychology",
    "human_sexuality", "human_aging", "nutrition", "virology",
)


@dataclass(frozen=True)
class TaskSource:
    name: str
    format: str
    path: str


def parse_task_spec(spec: str) -> TaskSource:
    """'medqa4=medqa:/data/medqa/test.jsonl' -> TaskSource (name=format:path)."""
    try:
        name, rest = spec.split("=", 1)
        fmt, path = rest.split(":", 1)
    except ValueError:
        raise UserFacingError(f"task '{spec}' is not NAME=FORMAT:PATH (e.g. pubmedqa=pubmedqa:/data/pubmedqa)") from None
    if fmt not in FORMATS:
        raise UserFacingError(f"task '{name}': format '{fmt}' unknown; choose one of {', '.join(FORMATS)}")
    return TaskSource(name, fmt, path)


def expand(sources: list[TaskSource]) -> list[TaskSource]:
    """An `mmlu` source given as a folder becomes one task per Med42 medical subject file in it."""
    out = []
    for source in sources:
        folder = Path(source.path)
        if source.format != "mmlu" or not folder.is_dir():
            out.append(source)
            continue
        found = {p.stem: p for p in folder.iterdir() if p.suffix in (".jsonl", ".json")}
        missing = [s for s in MED42_MMLU_SUBJECTS if s not in found]
        if missing:
            raise UserFacingError(
                f"task '{source.name}': {folder} lacks MMLU subject files for {', '.join(missing)} "
                "(expected <subject>.jsonl with question, choices, answer). Evaluation never downloads data.")
        out.extend(TaskSource(f"{source.name}_{subject}", "mmlu", str(found[subject]))
                   for subject in MED42_MMLU_SUBJECTS)
    return out


def _read_records(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else list(data.values())
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserFacingError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    return records


def _pubmedqa(folder: Path) -> list[dict]:
    data = json.loads((folder / "ori_pqal.json").read_text())
    test_ids = json.loads((folder / "test_ground_truth.json").read_text())
    # The ground-truth file lists the questions grouped by label (all "yes" first), so --limit N
    # would score a one-label subset; PMID order mixes labels like the whole set does.
    return [{"question": data[i]["QUESTION"], "context": "\n".join(data[i]["CONTEXTS"]),
             "choices": ["yes", "no", "maybe"], "letters": ["A", "B", "C"],
             "answer_index": ["yes", "no", "maybe"].index(test_ids[i])} for i in sorted(test_ids)]


def _options(record: dict, path: Path, number: int) -> tuple[list[str], int]:
    options = record.get("options", record.get("choices"))
    answer = record.get("answer_idx", record.get("answer"))
    if options is None or answer is None:
        raise UserFacingError(f"{path}: record {number} needs 'options' (or 'choices') and 'answer' "
                              f"(or 'answer_idx'); fields present: {sorted(record)}")
    if isinstance(options, dict):
        letters = sorted(options)
        choices = [options[k] for k in letters]
    else:
        choices, letters = list(options), list(string.ascii_uppercase[:len(options)])
    if isinstance(answer, str) and answer in letters:
        return choices, letters.index(answer)
    if isinstance(answer, int) and 0 <= answer < len(choices):
        return choices, answer
    raise UserFacingError(f"{path}: record {number}: answer {answer!r} is neither a letter of the "
                          f"options {letters} nor an index below {len(choices)}")


def normalise(source: TaskSource) -> list[dict]:
    path = Path(source.path)
    if not path.exists():
        raise UserFacingError(f"task '{source.name}': '{path}' does not exist. Expected "
                              f"{HOW_TO_GET[source.format]}. Evaluation never downloads data.")
    if source.format == "pubmedqa":
        return _pubmedqa(path)
    out = []
    for number, record in enumerate(_read_records(path), start=1):
        if source.format == "medmcqa":
            record = {"question": record["question"], "answer": int(record["cop"]),
                      "options": [record[k] for k in ("opa", "opb", "opc", "opd")]}
        choices, answer = _options(record, path, number)
        out.append({"question": record["question"], "context": "", "choices": choices,
                    "letters": list(string.ascii_uppercase[:len(choices)]), "answer_index": answer})
    return out


_PROMPT = ("{% if context %}Abstract: {{context}}\n{% endif %}Question: {{question}}\n"
           "{% for c in choices %}{{letters[loop.index0]}}. {{c}}\n{% endfor %}Answer:")
# Med42's chat framing (its role tags), zero-shot: the question and options as the prompter's
# turn, the answer scored as the assistant's.
_MED42_PROMPT = ("<|system|>: You are a helpful medical assistant. Answer the multiple-choice "
                 "question.\n<|prompter|>: " + _PROMPT[:-len("Answer:")] + "\n<|assistant|>:")
PROMPTS = {"plain": _PROMPT, "med42": _MED42_PROMPT}


def write_tasks(sources: list[TaskSource], folder: Path, prompt: str = "plain") -> list[str]:
    """Normalised data + lm-eval YAMLs in `folder`; returns the task names to run."""
    if prompt not in PROMPTS:
        raise UserFacingError(f"prompt style '{prompt}' unknown; choose one of {', '.join(PROMPTS)}")
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for source in expand(sources):
        data = folder / f"{source.name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in normalise(source)))
        modes = {"text": "choices"} if source.format == "pubmedqa" else {"letter": "letters", "text": "choices"}
        for mode, field in modes.items():
            task = f"{source.name}_{mode}"
            spec = {
                "task": task, "dataset_path": "json", "dataset_name": None,
                "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
                "test_split": "test", "output_type": "multiple_choice",
                "doc_to_text": PROMPTS[prompt], "doc_to_choice": field, "doc_to_target": "answer_index",
                "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
                "metadata": {"version": 1.0, "format": source.format, "source": source.path},
            }
            (folder / f"{task}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
            names.append(task)
    return names
