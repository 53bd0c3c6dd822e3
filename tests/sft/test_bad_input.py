"""Bad input: clear file:line messages (never the record's text), or counted skips; nothing lost."""

from __future__ import annotations

import json

import pytest
from sft_helpers import conv, write_jsonl

from data_prep.sft import SFTConfig, build_sft_dataset
from medmegatron.errors import UserFacingError

SECRET = "Patient John Roe MRN 4711"  # must never appear in a message

BAD = {
    "no_assistant_turn": {"messages": [{"role": "user", "content": SECRET}]},
    "unknown_role": {"messages": [{"role": "doctor", "content": SECRET},
                                  {"role": "assistant", "content": "ok"}]},
    "invalid_json": '{"messages": [' + SECRET,
    "misplaced_system": {"messages": [{"role": "user", "content": SECRET},
                                      {"role": "system", "content": "s"},
                                      {"role": "assistant", "content": "a"}]},
    "bad_turn_order": {"messages": [{"role": "assistant", "content": SECRET},
                                    {"role": "user", "content": "q"}]},
    "bad_content": {"messages": [{"role": "user", "content": ["x"]},
                                 {"role": "assistant", "content": SECRET}]},
    "no_messages": {"text": SECRET},
}


def _cfg(tmp_path, path, **kw):
    return SFTConfig(sources=[{"name": "s", "path": str(path)}], output_prefix=str(tmp_path / "out"),
                     template="mistral", seq_length=64, **kw)


@pytest.mark.parametrize("reason", sorted(BAD))
def test_each_bad_record_fails_with_file_and_line(tmp_path, reason):
    path = write_jsonl(tmp_path / "in.jsonl", [conv("q", "a"), BAD[reason]])
    with pytest.raises(UserFacingError) as err:
        build_sft_dataset(_cfg(tmp_path, path))
    message = str(err.value)
    assert f"{path}:2:" in message and "--on-error skip" in message
    assert SECRET not in message
    assert not (tmp_path / "out.bin").exists()  # nothing written on failure


def test_skip_counts_every_bad_record_and_overlong_sample(tmp_path):
    long_answer = " ".join(["word"] * 200)
    records = [conv("q1", "a1"), *BAD.values(), "",  # blank lines are not records
               conv("q2", long_answer),                    # truncated (answer still partly in)
               conv(" ".join(["question"] * 200), "a3"),  # answer cut off entirely -> dropped
               conv("q4", "a4", "trailing question")]     # trailing user turn removed, counted
    path = write_jsonl(tmp_path / "in.jsonl", records)
    m = build_sft_dataset(_cfg(tmp_path, path, on_error="skip"))
    s = m["counts"]["sources"]["s"]
    assert s["errors"]["skipped"] == {r: 1 for r in BAD}
    assert s["overlong_truncated"] == 1 and s["overlong_dropped_no_answer_left"] == 1
    assert s["trailing_user_turns_removed"] == 1
    assert s["records"] == 1 + len(BAD) + 3
    # nothing silently lost: every record is usable, skipped or dropped as overlong
    assert s["records"] == s["usable"] + s["errors"]["skipped_total"] + s["overlong_dropped_no_answer_left"]
    assert s["usable"] == 3 and m["counts"]["samples"] == 3
    assert all(":" in e for e in s["errors"]["skipped_examples"])
    assert SECRET not in json.dumps(m)


def test_drop_policy_drops_and_counts_overlong(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [conv("q1", "a1"), conv("q2", " ".join(["w"] * 200))])
    m = build_sft_dataset(_cfg(tmp_path, path, overlong="drop"))
    s = m["counts"]["sources"]["s"]
    assert s["overlong_dropped"] == 1 and s["usable"] == 1 and m["counts"]["samples"] == 1


def test_source_left_empty_by_validation_is_an_error_not_an_empty_dataset(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [BAD["no_assistant_turn"]])
    with pytest.raises(UserFacingError, match=r"no valid samples|selected no samples"):
        build_sft_dataset(_cfg(tmp_path, path, on_error="skip"))
