"""benchmark.models.answers: the declared ``extract`` answer mode, rule by rule."""
from __future__ import annotations

import pytest

from benchmark.models.answers import ANSWER_MODES, apply_answer_mode, describe_answer_mode, extract_answer
from benchmark.scoring.metrics import score
from benchmark.data.tasks import load_task

LAMP1, LAMP2, LAMP2N, LAMP3, LAMP5 = (load_task(n) for n in ("LaMP_1", "LaMP_2", "LaMP_2N", "LaMP_3", "LaMP_5"))


@pytest.mark.parametrize("text,expected", [
    ("The tag is dark comedy.", "dark comedy"),          # longest label at the earliest start
    ("comedy, or maybe dark comedy", "comedy"),          # first occurrence wins over length
    ("  SCI-FI!  ", "sci-fi"),                           # case-insensitive, canonical spelling returned
    ("Based on\na  book", "based on a book"),            # any whitespace run inside a phrase
    ("a comedy-drama about violence", "violence"),       # 'comedy' touching a hyphen is not a whole word
    ("sci-fi-ish, really a fantasy", "fantasy"),
    ("tragicomedy", "tragicomedy"),                      # inside a word: nothing found -> text unchanged
    ("comedy", "comedy"),
    ("I cannot tell.", "I cannot tell."),
])
def test_classification_extraction_lamp2(text, expected):
    assert extract_answer(LAMP2, text) == expected


def test_classification_extraction_with_symbols_lamp2n():
    assert extract_answer(LAMP2N, "Category: Science & Technology.") == "science & technology"
    assert extract_answer(LAMP2N, "food &  drink") == "food & drink"


@pytest.mark.parametrize("text,expected", [
    ("[2]", "[2]"),
    ("The answer is [2].", "[2]"),
    ("ref[1]", "[1]"),                           # brackets need no word edge
    ("2", "[2]"),                                # bare digit when no bracketed label occurs
    ("Reference 1 is related.", "[1]"),
    ("answer: 2.", "[2]"),                       # sentence-final period is fine
    ("Reference 2 is related, not [1]", "[1]"),  # any bracketed label beats a bare digit
    ("1.5", "1.5"),                              # part of a number: not a bare label
    ("12 references", "12 references"),
    ("neither", "neither"),
])
def test_classification_extraction_lamp1_brackets(text, expected):
    assert extract_answer(LAMP1, text) == expected


@pytest.mark.parametrize("text,expected", [
    ("I'd say 4 stars", "4"),
    (" 5 ", "5"),
    ("3.5", "3.5"),                           # already a number the official rule accepts: kept as is
    ("Rating: 4.", "4"),
    ("**2**", "2"),
    ("on a scale of 1-5 I give it 3", "3"),   # '1-5' is not a standalone token
    ("4/5", "4/5"),                           # nothing standalone -> unchanged (official: unparsable)
    ("4.5 stars", "4.5 stars"),
    ("10 out of 10", "10 out of 10"),         # 10 is not a label; 1 inside 10 is not standalone
    ("five", "five"),
])
def test_rating_extraction(text, expected):
    assert extract_answer(LAMP3, text) == expected


def test_generation_only_strips():
    assert extract_answer(LAMP5, '  Title: "A Study of X"\n') == 'Title: "A Study of X"'


def test_extracted_answers_score_under_the_official_rule():
    finals = apply_answer_mode(LAMP2, "extract", ["The tag is dark comedy.", "no idea"])
    s = score(LAMP2, finals, ["dark comedy", "comedy"])
    assert [r["correct"] for r in s.per_example] == [1, 0] and s.n_unparsable == 1


def test_apply_answer_mode_generate_keeps_text():
    assert apply_answer_mode(LAMP3, "generate", ["I'd say 4 stars"]) == ["I'd say 4 stars"]
    assert apply_answer_mode(LAMP3, "choice", ["4"]) == ["4"]


def test_describe_answer_mode():
    for mode in ("generate", "extract", "choice"):
        line = describe_answer_mode(mode)
        assert line and "\n" not in line
    assert set(ANSWER_MODES) == {"generate", "extract", "choice"}
    with pytest.raises(ValueError, match="unknown decoding.answer_mode 'regex'"):
        describe_answer_mode("regex")


@pytest.mark.parametrize("spec", [LAMP1, LAMP2, LAMP2N, LAMP3], ids=lambda s: s.name)
def test_every_label_extracts_to_itself_in_context(spec):
    # No label is shadowed by a shorter one or broken by its own punctuation ("&", "-", "[ ]").
    for label in spec.labels:
        assert extract_answer(spec, label) == label
        assert extract_answer(spec, f"Answer: {label.upper()}.") == label
        assert extract_answer(spec, f"I think it is {label}, because of the plot") == label


def test_echoed_instructions_yield_their_first_label():
    # A model that echoes the instruction gets the first label it wrote, by design (documented rule).
    echoed = "Just answer with [1] or [2] without explanation."
    assert extract_answer(LAMP1, echoed) == "[1]"
    assert extract_answer(LAMP3, "just answer with 1, 2, 3, 4, or 5") == "1"
