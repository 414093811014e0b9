"""benchmark.scoring.metrics: official LaMP semantics (LaMP's eval/evaluation.py) with hand-computed expectations."""
from __future__ import annotations

import json
import math
import time
from dataclasses import replace

import numpy as np
import pytest

from benchmark.scoring.metrics import (Scores, _macro_f1_batched, aggregate, bootstrap_ci, paired_test, rouge_scorer,
                               score)
from benchmark.data.tasks import Metric, load_task

LAMP1, LAMP2, LAMP3, LAMP4 = (load_task(n) for n in ("LaMP_1", "LaMP_2", "LaMP_3", "LaMP_4"))


# ------------------------------------------------------------------------------------------ classification
def test_strip_is_applied_to_pred_and_gold():
    s = score(LAMP2, [" comedy\n"], ["comedy  "])
    assert s.per_example == [{"pred_index": 2, "gold_index": 2, "correct": 1}]
    assert s.aggregates["accuracy"] == 1.0 and s.n_unparsable == 0


@pytest.mark.parametrize("pred", ["Comedy", "comedy.", "The tag is comedy", "", "COMEDY"])
def test_classification_is_exact_and_case_sensitive(pred):
    s = score(LAMP2, [pred], ["comedy"])
    assert s.per_example[0]["pred_index"] == -1 and s.per_example[0]["correct"] == 0
    assert s.n_unparsable == 1


def test_macro_f1_counts_absent_labels_as_zero_lamp2():
    # comedy: tp 1, predicted 1, gold 2 -> F1 = 2*1/(1+2) = 2/3; sci-fi, dystopia: F1 0; the other 12 labels
    # have neither gold nor prediction -> F1 0 but still averaged: macro = (2/3) / 15 = 2/45.
    s = score(LAMP2, ["comedy", "not a tag", "sci-fi"], ["comedy", "comedy", "dystopia"])
    assert [r["pred_index"] for r in s.per_example] == [2, -1, 0]
    assert [r["gold_index"] for r in s.per_example] == [2, 2, 5]
    assert s.aggregates["accuracy"] == pytest.approx(1 / 3)
    assert s.aggregates["f1"] == pytest.approx(2 / 45)
    assert s.n == 3 and s.n_unparsable == 1


def test_lamp1_accuracy_and_f1():
    # [1]: tp 1, pred 1, gold 2 -> 2/3; [2]: tp 0 -> 0; macro 1/3. Bare "1" is not a label officially.
    s = score(LAMP1, ["[1]", "[2]", "1"], ["[1]", "[1]", "[2]"])
    assert s.aggregates == pytest.approx({"accuracy": 1 / 3, "f1": 1 / 3})
    assert s.n_unparsable == 1


def test_batched_macro_f1_matches_hand_values():
    pred = np.array([[2, -1, 0], [2, 2, 5]])  # second row: comedy F1 2*2/(2+2)=1, dystopia 2*1/(1+1)=1
    gold = np.array([[2, 2, 5], [2, 2, 5]])
    assert _macro_f1_batched(pred, gold, 15) == pytest.approx([2 / 45, 2 / 15])


def test_batched_macro_f1_agrees_with_sklearn_path_on_random_data():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 15, size=40)
    pred = np.where(rng.random(40) < 0.2, -1, rng.integers(0, 6, size=40))
    per = [{"pred_index": int(p), "gold_index": int(g), "correct": int(p == g)} for p, g in zip(pred, gold)]
    assert aggregate(LAMP2, per)["f1"] == pytest.approx(_macro_f1_batched(pred[None], gold[None], 15)[0])


def test_gold_outside_labels_is_an_error_naming_the_id():
    with pytest.raises(ValueError, match="id 'q7'.*'horror'"):
        score(LAMP2, ["comedy"], ["horror"], ids=["q7"])


# ------------------------------------------------------------------------------------------ rating
def test_rating_parsing_fallback_and_errors():
    preds = ["4.0", "10", " 5 ", "five", "five", "five", "-1", "3.5"]
    golds = ["4", "2", "5", "2", "4", "3", "1", "3"]
    s = score(LAMP3, preds, golds)
    assert [r["pred"] for r in s.per_example] == [4.0, 10.0, 5.0, 5.0, 1.0, 5.0, -1.0, 3.5]
    assert [r["unparsable"] for r in s.per_example] == [False, False, False, True, True, True, False, False]
    assert [r["abs_err"] for r in s.per_example] == [0, 8, 0, 3, 3, 2, 2, 0.5]
    # |err| sum 18.5 -> MAE 18.5/8; err^2 sum 64+9+9+4+4+0.25 = 90.25 = 9.5^2 -> RMSE 9.5/sqrt(8)
    assert s.aggregates["MAE"] == pytest.approx(2.3125)
    assert s.aggregates["RMSE"] == pytest.approx(9.5 / math.sqrt(8))
    assert s.n_unparsable == 3


@pytest.mark.parametrize("gold,expected", [("1", 5.0), ("2", 5.0), ("3", 5.0), ("4", 1.0), ("5", 1.0)])
def test_rating_unparsable_goes_to_farthest_extreme(gold, expected):
    # gold 3: |1-3| > |5-3| is False -> 5.0 (the official tie rule)
    for pred in ["five", "4 stars", "", "nan", "inf"]:
        assert score(LAMP3, [pred], [gold]).per_example[0]["pred"] == expected


# ------------------------------------------------------------------------------------------ generation
def test_rouge_hand_computed():
    # pair 1: gold [the cat sat on the mat], pred [the cat lay]: overlap {the, cat} = 2, P 2/3, R 2/6 -> F 4/9;
    #         LCS "the cat" = 2 -> same 4/9.
    # pair 2: tokenizer lower-cases and drops punctuation: [cat the] vs [the cat]: unigram F 1; LCS 1 -> F 1/2.
    # pair 3: empty prediction -> 0 and counted unparsable.
    s = score(LAMP4, ["the cat lay", "  Cat, THE! ", "  "], ["the cat sat on the mat", "the cat", "a title"])
    assert s.per_example[0] == pytest.approx({"rouge-1": 4 / 9, "rouge-L": 4 / 9})
    assert s.per_example[1] == pytest.approx({"rouge-1": 1.0, "rouge-L": 0.5})
    assert s.per_example[2] == {"rouge-1": 0.0, "rouge-L": 0.0}
    assert s.aggregates == pytest.approx({"rouge-1": (4 / 9 + 1) / 3, "rouge-L": (4 / 9 + 0.5) / 3})
    assert s.n_unparsable == 1


def test_rouge_scorer_is_cached():
    assert rouge_scorer() is rouge_scorer()


def test_aggregate_recomputes_from_json_round_tripped_records():
    s = score(LAMP3, ["4", "x", "2"], ["5", "3", "2"])
    per = json.loads(json.dumps(s.per_example))
    assert aggregate(LAMP3, per) == s.aggregates  # MAE (1+2+0)/3, RMSE sqrt(5/3)
    assert s.aggregates == pytest.approx({"MAE": 1.0, "RMSE": math.sqrt(5 / 3)})


def test_unknown_metric_and_length_mismatch_are_errors():
    with pytest.raises(ValueError, match="bleu"):
        score(replace(LAMP4, metrics=[Metric("bleu")]), ["a"], ["a"])
    with pytest.raises(ValueError, match="2 predictions for 1 golds"):
        score(LAMP4, ["a", "b"], ["a"])
    with pytest.raises(ValueError, match="0 examples"):
        score(LAMP4, [], [])


# ------------------------------------------------------------------------------------------ bootstrap
def _gen_records(values):
    return [{"rouge-1": v, "rouge-L": v / 2} for v in values]


def test_bootstrap_ci_contains_point_estimate_and_is_fast():
    rng = np.random.default_rng(0)
    per = _gen_records(rng.random(1000).tolist())
    t0 = time.perf_counter()
    ci = bootstrap_ci(LAMP4, per, n_boot=1000, seed=0)
    assert time.perf_counter() - t0 < 1.0
    point = aggregate(LAMP4, per)
    for name, (lo, hi) in ci.items():
        assert lo < point[name] < hi
        assert hi - lo < 0.1  # sd of U(0,1) mean over 1000 ~ 0.009 -> 95% width ~ 0.036
    assert bootstrap_ci(LAMP4, per, seed=0) == ci  # seeded


def test_bootstrap_ci_is_degenerate_for_constant_scores():
    ci = bootstrap_ci(LAMP4, _gen_records([0.5] * 50))
    assert ci["rouge-1"] == pytest.approx((0.5, 0.5)) and ci["rouge-L"] == pytest.approx((0.25, 0.25))


def test_bootstrap_ci_classification_and_rating():
    s = score(LAMP2, ["comedy", "sci-fi", "x", "comedy"] * 10, ["comedy", "sci-fi", "comedy", "dystopia"] * 10)
    ci = bootstrap_ci(LAMP2, s.per_example)
    for name in ("accuracy", "f1"):
        assert ci[name][0] <= s.aggregates[name] <= ci[name][1]
    r = score(LAMP3, ["3"] * 20, ["1"] * 20)  # every error is 2 -> MAE = RMSE = 2 in every resample
    ci = bootstrap_ci(LAMP3, r.per_example)
    assert ci["MAE"] == pytest.approx((2.0, 2.0)) and ci["RMSE"] == pytest.approx((2.0, 2.0))


# ------------------------------------------------------------------------------------------ paired test
def test_paired_test_identical_systems_has_p_one():
    per = _gen_records(np.random.default_rng(2).random(100).tolist())
    res = paired_test(LAMP4, per, per, "rouge-1")
    assert res.delta == 0.0 and res.p_value == 1.0 and res.ci == (0.0, 0.0)


def test_paired_test_clear_difference_has_small_p():
    golds = ["comedy"] * 100
    a = score(LAMP2, ["comedy"] * 90 + ["x"] * 10, golds).per_example
    b = score(LAMP2, ["comedy"] * 10 + ["x"] * 90, golds).per_example
    res = paired_test(LAMP2, a, b, "accuracy", n_boot=2000)
    assert res.delta == pytest.approx(0.8)
    assert res.p_value == pytest.approx(1 / 2001)  # no resample moves delta by 0.8
    assert res.ci[0] > 0.6 and res.ci[1] <= 0.9


def test_paired_test_sign_and_validation():
    golds = ["3"] * 30
    a = score(LAMP3, ["3"] * 30, golds).per_example
    b = score(LAMP3, ["4"] * 30, golds).per_example
    assert paired_test(LAMP3, a, b, "RMSE").delta == pytest.approx(-1.0)  # negative = a better for errors
    with pytest.raises(ValueError, match="accuracy"):
        paired_test(LAMP3, a, b, "accuracy")
    with pytest.raises(ValueError, match="aligned"):
        paired_test(LAMP3, a, b[:-1], "MAE")


def test_scores_dataclass_fields():
    s = score(LAMP1, ["[2]"], ["[2]"])
    assert isinstance(s, Scores) and s.n == 1 and s.aggregates == {"accuracy": 1.0, "f1": 0.5}  # [1] absent: 0
