"""The checks a proposal passes before gitaudit resolve writes it (pure functions)."""

from __future__ import annotations

import pytest

from gitaudit.claude.validate import AnswerError, check_proposal, failures, parse_answer


def test_the_file_is_what_is_between_the_tags() -> None:
    body, explanation = parse_answer(
        "I merged both.\n<resolved_file>\na\nb\n</resolved_file>\nDone.", "end_turn")
    assert body == "a\nb\n"
    assert explanation == "I merged both.\n\nDone."


@pytest.mark.parametrize(
    ("text", "stop_reason", "problem"),
    [
        ("no tags at all", "end_turn", "no <resolved_file> tag"),
        ("<resolved_file>a</resolved_file><resolved_file>b</resolved_file>", "end_turn",
         "2 <resolved_file> and 2 </resolved_file>"),
        ("<resolved_file>\na\n", "end_turn", "1 <resolved_file> and 0 </resolved_file>"),
        ("</resolved_file>a<resolved_file>", "end_turn", "comes before"),
        ("<resolved_file>\na\n</resolved_file>", "max_tokens", "cut short at max_tokens"),
        ("I cannot help with that.", "refusal", "declined"),
    ],
)
def test_malformed_answers(text: str, stop_reason: str, problem: str) -> None:
    with pytest.raises(AnswerError, match=problem):
        parse_answer(text, stop_reason)


def test_markers_left_fail_but_a_side_s_own_underline_does_not() -> None:
    left = check_proposal("a.txt", "<<<<<<< HEAD\na\n=======\nb\n>>>>>>> x\n",
                          base="o\n", ours="a\n", theirs="b\n")
    assert failures(left) == ["conflict_markers: conflict markers left: <<<<<<<, =======, >>>>>>>"]
    heading = "Title\n=======\n"
    assert failures(check_proposal("README.rst", heading + "new\n", base=heading,
                                   ours=heading + "a\n", theirs=heading + "b\n")) == []


@pytest.mark.parametrize(
    ("path", "good", "bad"),
    [
        ("x.py", "x = 1\n", "def f(:\n"),
        ("x.json", '{"a": 1}\n', '{"a": 1,\n'),
        ("x.toml", "a = 1\n", "a = = 1\n"),
        ("x.yml", "a: 1\n", "a: [1\n"),
    ],
)
def test_syntax_by_type(path: str, good: str, bad: str) -> None:
    assert failures(check_proposal(path, good, base=good, ours=good, theirs=good)) == []
    failed = failures(check_proposal(path, bad, base=good, ours=good, theirs=good))
    assert len(failed) == 1 and failed[0].startswith("syntax:")
    # a file that never parsed (a template, JSON with comments) is not held against Claude
    skipped = check_proposal(path, bad, base=bad, ours=bad, theirs=bad)
    assert failures(skipped) == []
    assert "no side parsed" in str(skipped[-1]["detail"])


def test_empty_only_when_a_side_was() -> None:
    assert failures(check_proposal("a.txt", "", base="x\n", ours="a\n", theirs="b\n")) == [
        "not_empty: the proposal is empty but neither side is"]
    assert failures(check_proposal("a.txt", "", base="x\n", ours="", theirs="b\n")) == []
