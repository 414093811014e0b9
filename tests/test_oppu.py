"""OPPU per-user LoRA (baselines/oppu.py, baselines/lora_trainer.py): user isolation of the training pairs,
the leak-free history, user selection and fallback, resume from stored adapters, both backbone kinds, the
shared backbone left untouched, and the cost fields. Tiny random models; expectations written by hand."""
from __future__ import annotations

import pytest
import torch

import baselines.oppu as oppu_mod
from baselines.lora_trainer import read_adapter, resolve_targets
from baselines.oppu import derived_fields, select_users, user_pairs
from benchmark.contract.context import Context
from benchmark.data.example import Example, leak_free_history
from benchmark.data.tasks import load_task
from benchmark.runs.config import compose


def pair_template(task: str):
    """OPPU's per-user pair template of ``task`` (the tasks: block of configs/methods/oppu.yaml)."""
    return compose(task, "oppu", profile="test").method.user_pair


LAMP2 = load_task("LaMP_2")
PAIR2 = pair_template("LaMP_2")
PREFIX = PAIR2.input.split("{description}")[0]              # the template text before the description
SMALL = ["method.task.max_pairs=4", "method.task.batch_size=2", "method.user.epochs=1",
         "method.user.batch_size=2", "method.user.max_pairs=3"]


def item(user: int, t: int, tag: str) -> dict:
    return {"id": f"2{user:05d}{t:04d}", "description": f"movie {user} {t} user likes", "tag": tag}


def profile(user: int, n: int, tags=("comedy", "classic", "fantasy", "romance", "action")) -> tuple[dict, ...]:
    return tuple(item(user, t, tags[(t + user) % len(tags)]) for t in range(n))


def question(user: int, n_items: int, qid: str | None = None) -> Example:
    return Example(id=qid or f"q{user}", user_id=f"u{user}", input=PREFIX + "movie the user likes",
                   profile=profile(user, n_items), gold="comedy")


TRAIN = [Example(id=f"t{i}", user_id=f"tr{i}", input=PREFIX + f"movie {i}", profile=profile(90 + i, 2),
                 gold=["comedy", "classic", "action", "fantasy", "romance"][i]) for i in range(5)]


def make_method(tmp_path, tiny_overrides, backbone_dir, *extra, method="oppu"):
    from benchmark.contract.registry import get_method
    cfg = compose("LaMP_2", method, tiny_overrides(backbone_dir, *SMALL, *extra), profile="test")
    return get_method(method)(Context(cfg))


@pytest.fixture
def spy(monkeypatch):
    """Records the training pairs of every train_lora call (stage 1 first, then one call per trained user)."""
    calls: list[list[tuple[str, str]]] = []
    real = oppu_mod.train_lora

    def wrapper(lm, pairs, *a, **kw):
        calls.append(list(pairs))
        return real(lm, pairs, *a, **kw)
    monkeypatch.setattr(oppu_mod, "train_lora", wrapper)
    return calls


# ------------------------------------------------------------------------------------------ pure helpers
def test_lamp7_head_tail_hand_computed():
    spec = load_task("LaMP_7")
    got = derived_fields(spec, {"text": "one two three four five six seven eight nine"})
    assert got == {"head": "one two", "tail": "three four five six seven eight nine"}   # 9 // 4 = 2 words
    assert derived_fields(spec, {"text": "single"}) == {"head": "single", "tail": ""}
    items = [{"id": "1", "text": "a b c d e f g h"}, {"id": "2", "text": "lonely"}]
    pairs = user_pairs(spec, pair_template("LaMP_7"), items)
    assert pairs == [("Complete the following tweet: a b", "c d e f g h")]            # empty tail dropped


def test_lamp2_user_pairs_use_the_users_items():
    pairs = user_pairs(LAMP2, PAIR2, [item(3, 0, "comedy"), item(3, 1, "classic")])
    assert pairs == [(PREFIX + "movie 3 0 user likes", "comedy"), (PREFIX + "movie 3 1 user likes", "classic")]


def test_history_is_what_every_evaluated_question_may_see():
    early = Example(id="a", user_id="u", input="x", profile=profile(1, 3))
    late = Example(id="b", user_id="u", input="y", profile=profile(1, 5))   # holds the items after `early`
    assert [it["id"] for it in leak_free_history([late, early])] == ["2000010000", "2000010001", "2000010002"]


def test_selection_most_active_first_ties_by_key():
    sizes = {"b": 3, "a": 3, "c": 7, "d": 1}
    assert select_users(sizes, None) == ["c", "a", "b", "d"]
    assert select_users(sizes, 2) == ["c", "a"]


def test_auto_targets_by_kind(tiny_causal_dir, tiny_seq2seq_dir):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM
    causal = AutoModelForCausalLM.from_pretrained(tiny_causal_dir)
    assert resolve_targets(causal, "causal", "auto") == ["q_proj", "v_proj"]
    assert resolve_targets(AutoModelForSeq2SeqLM.from_pretrained(tiny_seq2seq_dir), "seq2seq", "auto") == ["q", "v"]
    assert resolve_targets(causal, "causal", ["k_proj"]) == ["k_proj"]
    with pytest.raises(ValueError, match="target_modules=auto"):
        resolve_targets(torch.nn.Sequential(torch.nn.Linear(2, 2)), "causal", "auto")


# ------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_isolation_resume_and_cost(tiny_backbone_dir, tiny_overrides, tmp_path, spy):
    evals = [question(1, 3), question(2, 4), question(3, 2)]
    m = make_method(tmp_path, tiny_overrides, tiny_backbone_dir)
    shared_before = {k: v.clone() for k, v in m.ctx.lm.model.state_dict().items()}
    m.fit(TRAIN)
    pred = m.predict(evals)
    out = pred.outputs
    assert len(out) == 3 and len(pred.raw) == 3 and all(isinstance(o, str) for o in out)

    # stage 1: the first 4 training questions' (input, gold) pairs (a seeded sample of 4 out of 5)
    assert len(spy[0]) == 4 and {p for p in spy[0]} <= {(ex.input, ex.gold) for ex in TRAIN}
    # stage 2: users in order of history size (u2: 4 items, u1: 3, u3: 2); each sees its own latest 3 items only
    assert spy[1:] == [user_pairs(LAMP2, PAIR2, profile(2, 4)[-3:]), user_pairs(LAMP2, PAIR2, profile(1, 3)),
                       user_pairs(LAMP2, PAIR2, profile(3, 2))]
    for pairs, user in zip(spy[1:], (2, 1, 3)):
        assert all(f"movie {user} " in prompt for prompt, _ in pairs)

    # the shared backbone is untouched (stage 1 merged into a copy)
    after = m.ctx.lm.model.state_dict()
    assert after.keys() == shared_before.keys() and all(torch.equal(after[k], shared_before[k]) for k in after)

    # adapters of different users differ; stored under content keys
    states = [read_adapter(m.ctx.store.dir("oppu_user_adapters", m.users[u]["key"]))[0] for u in ("u1", "u2")]
    assert states[0].keys() == states[1].keys()
    assert any(not torch.equal(states[0][k], states[1][k]) for k in states[0] if "lora_A" in k or "lora_B" in k)

    cost = m.cost()
    for field in ("user_train_s_mean", "user_train_s_total", "adapter_bytes_per_user_mean", "adapter_bytes_total",
                  "trainable_params_per_user", "stage1_train_s", "n_users_without_adapter"):
        assert field in cost
    assert cost["n_users_trained"] == 3 and cost["n_users_without_adapter"] == 0
    assert cost["adapter_bytes_total"] > 0 and cost["trainable_params_per_user"] > 0
    assert [r["user"] for r in m.diagnostics()["oppu_users.jsonl"]] == ["u2", "u1", "u3"]

    # resume: a fresh method over the same store trains nothing and answers the same
    spy.clear()
    again = make_method(tmp_path, tiny_overrides, tiny_backbone_dir)
    again.fit(TRAIN)
    assert again.predict(evals) == pred
    assert spy == [] and again.cost()["n_users_resumed"] == 3 and again.cost()["n_users_trained"] == 0
    assert again.cost()["user_train_s_total"] == cost["user_train_s_total"]   # recorded with the adapters


@pytest.mark.slow
def test_max_users_cap_and_fallback(tiny_causal_dir, tiny_overrides, tmp_path, spy):
    evals = [question(1, 3), question(2, 4), question(3, 2), question(2, 5, qid="q2b")]
    m = make_method(tmp_path, tiny_overrides, tiny_causal_dir, "method.max_users=1")
    m.fit(TRAIN)
    out = m.predict(evals).outputs
    assert len(out) == 4
    # u2 has two questions: its history is the 4 items both may see (q2b's 5th item is q2's future); latest 3 kept
    assert spy[1:] == [user_pairs(LAMP2, PAIR2, profile(2, 4)[-3:])]
    cost = m.cost()
    assert cost["n_users_with_adapter"] == 1 and cost["n_users_without_adapter"] == 2
    assert cost["n_examples_fallback"] == 2 and cost["fallback"] == "task_adapter"

    strict = make_method(tmp_path, tiny_overrides, tiny_causal_dir, "method.max_users=1", "method.fallback=error")
    strict.fit(TRAIN)
    with pytest.raises(RuntimeError, match="fallback=error"):
        strict.predict(evals)


def test_bad_fallback_is_a_named_error(tiny_causal_dir, tiny_overrides, tmp_path):
    with pytest.raises(ValueError, match="method.fallback"):
        make_method(tmp_path, tiny_overrides, tiny_causal_dir, "method.fallback=base")


def test_oppu_rag_config_is_oppu_plus_retrieval():
    from omegaconf import OmegaConf
    plain = OmegaConf.to_container(compose("LaMP_2", "oppu", profile="test").method)
    rag = OmegaConf.to_container(compose("LaMP_2", "oppu_rag", profile="test").method)
    assert {k: v for k, v in rag.items() if k not in ("k", "retriever", "name")} == \
        {k: v for k, v in plain.items() if k != "name"}
    assert (rag["k"], rag["retriever"]) == (1, "bm25")


@pytest.mark.slow
def test_oppu_rag_trains_and_answers_on_retrieval_prompts(tiny_causal_dir, tiny_overrides, tmp_path, spy):
    evals = [question(1, 3), question(2, 4)]
    m = make_method(tmp_path, tiny_overrides, tiny_causal_dir, method="oppu_rag")
    m.fit(TRAIN)
    pred = m.predict(evals)
    assert len(pred.outputs) == 2
    item_text = LAMP2.rag.item.split("{")[0]                       # 'the tag for the movie: "'
    assert all(item_text in prompt for prompt, _ in spy[0])         # stage 1 on RAG prompts
    assert all(item_text in p and p.endswith(ex.input) for p, ex in zip(pred.prompts, evals))
    assert spy[1:] == [user_pairs(LAMP2, PAIR2, profile(2, 4)[-3:]), user_pairs(LAMP2, PAIR2, profile(1, 3))]


@pytest.mark.slow
def test_runner_row_carries_the_cost(tiny_causal_dir, tiny_overrides, tmp_path):
    """Through the grid runner on the synthetic pack (LaMP-7: the derived head/tail pairs): one row per method
    with the OPPU cost fields, and the per-user log beside the predictions."""
    import json

    from benchmark.runs import provenance as runs
    from benchmark.runs.runner import main
    over = tiny_overrides(tiny_causal_dir, *SMALL)
    assert main(["--tasks", "LaMP_7", "--methods", "oppu,oppu_rag", "--profile", "test", *over]) == 0
    rows = list(runs.read_rows(tmp_path / "results" / "runs.jsonl"))
    assert [r["method"] for r in rows] == ["oppu", "oppu_rag"]
    for row in rows:
        assert row["status"] == "finished" and row["cost"]["n_users_with_adapter"] == row["n_users"]
        assert row["cost"]["adapter_bytes_total"] > 0 and row["cost"]["stage1_status"] == "trained"
        log = tmp_path / "results" / "runs" / row["run_id"] / "oppu_users.jsonl"
        assert len([json.loads(x) for x in log.read_text().splitlines()]) == row["n_users"]
