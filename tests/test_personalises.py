"""Persona-Plug personalises when the signal exists, and only through the user's history.

On the synthetic pack (benchmark/data/synthetic.py) every user has a planted favourite label: the gold of ~80% of
their questions and the label of ~80% of their profile items. A plug that reads the history can find it; the same
training without a user token (``tasktuned``) cannot. So on the dev split:

1. ``pplug_labels`` (Persona-Plug + the history's label distribution as one more soft token) beats ``tasktuned``
   by a stated margin;
2. with the histories shuffled across users (each dev question gets another user's profile, same trained plug:
   the second run is a checkpoint-cache hit), the gain disappears: the plug drops to about ``tasktuned``'s level,
   while ``tasktuned``'s own answers do not change at all.

Why these settings (all config overrides; no production code is special-cased):

* ``method.placement=suffix``: on the tiny random Llama of conftest.py, soft tokens in front of the prompt (the
  paper's placement) cannot move the answer: the loss of the same prompts varies by ~0.005 nats over random
  prefixes of 1x and 10x the embedding norm (~0.05 when they sit after the prompt), presumably because its
  near-uniform attention dilutes them over ~70 positions; every variant then predicts one constant label (the
  0.067 of an earlier attempt). Right before the answer, the last soft token is in the residual stream that
  predicts the first answer token.
* ``decoding.choice_norm=token``: with a random LLM every token after the first of a multi-token label ("based
  on a book") costs ~log(vocab), so ``sum`` scoring only ever picks one-token labels (LaMP_2 plateaued at 0.47);
  the per-token mean lets every label be chosen.
* plain ``pplug`` is not tested: its user token comes from the item *texts* through the tiny random BERT, whose
  embeddings barely tell users apart (mean within-user item cosine 0.94 vs 0.89 overall); the trained user token
  varied ~2% across users and pplug stayed within 0.07 of tasktuned's accuracy in every setting tried (lr
  1e-2..3e-1, up to 10 epochs, unit/official scale, 16- to 256-dim embedders). The label channel carries the
  labels directly.
"""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

pytestmark = pytest.mark.slow     # ~25 s on one thread: 4 trainings and 8 dev predictions

N_USERS = 60            # one dev question per user (time split): 60 dev and 180 train questions per task
PLUG = "pplug_labels"   # the personalised method under test (pinned use_user=true)
BASE = "tasktuned"      # the same training with the instruction token only
SETTINGS = ("data.limit=null", "data.train_limit=null", "decoding.answer_mode=choice", "decoding.choice_norm=token",
            "method.placement=suffix", "method.lr=3e-2", "method.epochs=3", "method.max_steps=-1",
            "method.batch_size=8", "method.accumulate_grad_batches=1", "method.augment_copies=2",
            "method.cache=true")  # the shuffled run reuses the trained plug from the store: same weights

# Measured when written (method seed 0, pack seed 0, 60 users, dev accuracy; chance 1/15 and 1/5):
#   LaMP_2 (15 tags):   pplug_labels 0.683, tasktuned 0.033, pplug_labels on shuffled histories 0.067
#   LaMP_3 (5 ratings): pplug_labels 0.750, tasktuned 0.233, pplug_labels on shuffled histories 0.250
# Not a fluke of the seed: method seed 1 / 2 gave 0.700 / 0.700 vs 0.033 (LaMP_2) and 0.750 / 0.767 vs 0.233
# (LaMP_3); pack seed 1 gave 0.717 vs 0.050 and 0.633 vs 0.217, shuffled never more than 0.034 above tasktuned.
# With the user side switched off (measured as tasktuned + method.label_channel=true, which silently dropped the
# channel then and is refused by the config now) every number equals tasktuned's and both tests fail;
# so they do with the paper's prefix placement (0.083 vs 0.050, 0.233 vs 0.233).
MIN_GAIN = {"LaMP_2": 0.45, "LaMP_3": 0.30}      # plug - tasktuned, and plug - plug on shuffled histories
SHUFFLED_SLACK = 0.10                             # shuffled plug <= tasktuned + this ("about tasktuned's level")


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    from benchmark.data.synthetic import write_synthetic
    return write_synthetic(tmp_path_factory.mktemp("pack"), seed=0, n_users=N_USERS, tasks=["LaMP_2", "LaMP_3"])


def shuffled_histories(examples, seed: int = 0):
    """Each question keeps its input and gold but gets the profile of a question of another user (a seeded
    derangement over users)."""
    order = list(range(len(examples)))
    rng = random.Random(f"shuffle-histories:{seed}")
    while True:
        rng.shuffle(order)
        if all(examples[i].user_key != examples[j].user_key for i, j in enumerate(order)):
            return [replace(ex, profile=examples[j].profile) for ex, j in zip(examples, order)]


def _accuracy(outcome) -> float:
    golds = [ex.gold for ex in outcome.examples]
    return sum(p == g for p, g in zip(outcome.prediction.outputs, golds)) / len(golds)


@pytest.fixture(scope="module", params=["LaMP_2", "LaMP_3"])
def measured(request, pack, tiny_causal_dir, tiny_embedder_dir, tmp_path_factory):
    """Dev accuracy of the plug and the baseline, on the real and on shuffled histories (one training each)."""
    from benchmark.runs.config import compose
    from benchmark.runs.experiment import prepare_data, run

    task = request.param
    tmp = tmp_path_factory.mktemp(f"personalises_{task}")
    over = [f"backbone.id={tiny_causal_dir}", f"embedder.id={tiny_embedder_dir}", "backbone.threads=0",
            f"run.cache_dir={tmp / 'cache'}", f"run.results_dir={tmp / 'results'}", f"data.source={pack}", *SETTINGS]
    acc, cached, outputs = {}, {}, {}
    for method in (PLUG, BASE):
        cfg = compose(task, method, over, profile="test")
        for histories in ("own", "shuffled"):
            data = prepare_data(cfg)
            assert len(data.eval_examples) == N_USERS and len({ex.user_key for ex in data.eval_examples}) == N_USERS
            if histories == "shuffled":
                data.eval_examples = shuffled_histories(data.eval_examples)
            out = run(cfg, data)
            acc[method, histories] = _accuracy(out)
            cached[method, histories] = out.cost["checkpoint_cached"]
            outputs[method, histories] = list(out.prediction.outputs)
            if task == "LaMP_2":
                assert out.metrics["accuracy"]["value"] == pytest.approx(acc[method, histories])
    print(f"\n{task}: " + ", ".join(f"{m} {h} {a:.3f}" for (m, h), a in acc.items()))
    return task, acc, cached, outputs


def test_pplug_labels_beats_tasktuned_on_planted_preferences(measured):
    task, acc, _, _ = measured
    assert acc[PLUG, "own"] >= acc[BASE, "own"] + MIN_GAIN[task], acc


def test_the_gain_disappears_when_histories_are_shuffled_across_users(measured):
    task, acc, cached, outputs = measured
    assert not cached[PLUG, "own"] and cached[PLUG, "shuffled"]          # the same trained plug, other histories
    assert outputs[BASE, "shuffled"] == outputs[BASE, "own"]             # tasktuned never reads the history
    assert acc[PLUG, "shuffled"] <= acc[BASE, "own"] + SHUFFLED_SLACK, acc
    assert acc[PLUG, "own"] - acc[PLUG, "shuffled"] >= MIN_GAIN[task], acc
