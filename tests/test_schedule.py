"""The one linear warm-up / linear decay schedule (benchmark/models/schedule.py), in both of its callers' forms."""
from __future__ import annotations

import math

import pytest

from benchmark.models.schedule import linear_warmup_decay


def test_hugging_face_form_starts_at_zero():
    f = linear_warmup_decay(100, 0.05)                             # warmup = ceil(5) = 5 steps
    assert [f(0), f(2), f(5), f(100)] == [0.0, 0.4, 1.0, 0.0]
    assert math.isclose(f(52.5), 0.5)


def test_lora_form_trains_from_the_first_step():
    f = linear_warmup_decay(10, 0.1, warmup_from_zero=False)     # warmup = ceil(1) = 1 step: full lr at step 0
    assert [f(0), f(1), f(10)] == [1.0, 1.0, 0.0] and math.isclose(f(5), 5 / 9)   # then (10 - s) / (10 - 1)
    g = linear_warmup_decay(20, 0.2, warmup_from_zero=False)     # 4 warm-up steps: 1/4, 2/4, 3/4, 4/4
    assert [g(0), g(1), g(3), g(4)] == [0.25, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("total,ratio", [(0, 0.1), (1, 0.0), (1, 0.5), (3, 1.0)])
def test_degenerate_lengths_never_divide_by_zero(total, ratio):
    for from_zero in (True, False):
        f = linear_warmup_decay(total, ratio, warmup_from_zero=from_zero)
        values = [f(s) for s in range(total + 2)]
        assert all(0.0 <= v <= 1.0 for v in values), values
    assert linear_warmup_decay(total, ratio, warmup_from_zero=False)(0) > 0       # a LoRA step always trains
