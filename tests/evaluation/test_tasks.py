"""Local-file medical QA tasks: normalisation of each format, and offline errors that say what to get."""

from __future__ import annotations

import json

import pytest

from medmegatron.errors import UserFacingError
from medmegatron.evaluation.tasks import TaskSource, normalise, parse_task_spec, write_tasks
from medmegatron.paths import pubmedqa_dir


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_formats_normalise_to_one_schema(tmp_path):
    medqa = _jsonl(tmp_path / "medqa.jsonl", [{"question": "Q1", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "C"}])
    medmcqa = _jsonl(tmp_path / "medmcqa.jsonl", [{"question": "Q2", "opa": "w", "opb": "x", "opc": "y", "opd": "z", "cop": 1}])
    mmlu = _jsonl(tmp_path / "mmlu.jsonl", [{"question": "Q3", "choices": ["p", "q", "r", "s"], "answer": 3}])
    mcq = _jsonl(tmp_path / "mine.jsonl", [{"question": "Q4", "options": ["yes", "no"], "answer": "B"}])
    assert normalise(TaskSource("m", "medqa", medqa))[0] == {
        "question": "Q1", "context": "", "choices": ["a", "b", "c", "d"], "letters": ["A", "B", "C", "D"], "answer_index": 2}
    assert normalise(TaskSource("m", "medmcqa", medmcqa))[0]["answer_index"] == 1
    assert normalise(TaskSource("m", "mmlu", mmlu))[0]["choices"][3] == "s"
    assert normalise(TaskSource("m", "mcq", mcq))[0]["answer_index"] == 1


def test_missing_file_says_what_to_obtain(tmp_path):
    with pytest.raises(UserFacingError, match="does not exist. Expected MedQA .* never downloads"):
        normalise(parse_task_spec(f"medqa4=medqa:{tmp_path / 'absent.jsonl'}"))


def test_bad_records_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok", "options": ["a"], "answer": 0}\n{not json\n')
    with pytest.raises(UserFacingError, match=r"bad.jsonl:2: not valid JSON"):
        normalise(TaskSource("b", "mcq", str(bad)))
    wrong = _jsonl(tmp_path / "wrong.jsonl", [{"question": "q", "options": ["a", "b"], "answer": "E"}])
    with pytest.raises(UserFacingError, match="answer 'E' is neither a letter"):
        normalise(TaskSource("w", "mcq", wrong))


def test_each_mcq_dataset_becomes_letter_and_text_tasks(tmp_path):
    data = _jsonl(tmp_path / "q.jsonl", [{"question": "Q", "options": ["a", "b"], "answer": 0}])
    names = write_tasks([TaskSource("quiz", "mcq", data)], tmp_path / "tasks")
    assert names == ["quiz_letter", "quiz_text"]


@pytest.mark.skipif(pubmedqa_dir() is None, reason="needs ../shared/data/pubmedqa (dev/CI machines only)")
def test_pubmedqa_test_split_has_the_500_expert_labelled_questions():
    records = normalise(TaskSource("p", "pubmedqa", str(pubmedqa_dir())))
    assert len(records) == 500
    assert {r["choices"][r["answer_index"]] for r in records} == {"yes", "no", "maybe"}
    # --limit takes the first N: they must not all carry one label (the file is grouped by label)
    first = [r["choices"][r["answer_index"]] for r in records[:100]]
    assert all(first.count(label) >= 10 for label in ("yes", "no", "maybe")), first


def test_mmlu_folder_expands_to_the_med42_subjects_and_names_missing_ones(tmp_path):
    from medmegatron.evaluation.tasks import MED42_MMLU_SUBJECTS

    folder = tmp_path / "mmlu"
    folder.mkdir()
    for subject in MED42_MMLU_SUBJECTS[:-1]:
        _jsonl(folder / f"{subject}.jsonl", [{"question": "q", "choices": ["a", "b", "c", "d"], "answer": 1}])
    with pytest.raises(UserFacingError, match="lacks MMLU subject files for virology"):
        write_tasks([TaskSource("mmlu_med", "mmlu", str(folder))], tmp_path / "tasks")
    _jsonl(folder / "virology.jsonl", [{"question": "q", "choices": ["a", "b", "c", "d"], "answer": 1}])
    names = write_tasks([TaskSource("mmlu_med", "mmlu", str(folder))], tmp_path / "tasks")
    assert len(names) == 2 * 13 and "mmlu_med_anatomy_text" in names


def test_med42_prompt_frames_the_question_with_its_role_tags(tmp_path):
    import yaml

    data = _jsonl(tmp_path / "q.jsonl", [{"question": "Q", "options": ["a", "b"], "answer": 0}])
    write_tasks([TaskSource("quiz", "mcq", data)], tmp_path / "tasks", prompt="med42")
    text = yaml.safe_load((tmp_path / "tasks" / "quiz_text.yaml").read_text())["doc_to_text"]
    assert text.startswith("<|system|>") and "<|prompter|>" in text and text.endswith("<|assistant|>:")
