"""Persona-Plug: the user embedder (shapes, masks, scale, cold start, variants), its data path (augmentation,
history cap, schedule), and the method on tiny causal AND seq2seq backbones (frozen LLM, injection position,
seeded reproducibility, the checkpoint cache)."""
from __future__ import annotations

import math

import pytest
import torch

from benchmark.data.example import Example
from benchmark.models.loading import load_embedder
from personaplug.data import PlugBatches, PlugItem, augment, split_by_user
from personaplug.model import PersonaPlug, pad_history
from personaplug.module import linear_warmup_decay

D_LLM, SCALE = 12, 3.0


@pytest.fixture
def embedder(tiny_embedder_dir):
    return load_embedder({"id": str(tiny_embedder_dir), "pooling": "mean", "normalize": True, "max_tokens": 64})


def _plug(embedder, **kw) -> PersonaPlug:
    torch.manual_seed(0)
    kw.setdefault("scale_mode", "unit")                 # every soft token has norm SCALE: easy to check by hand
    return PersonaPlug(embedder, D_LLM, scale=SCALE, **kw).eval()


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


# ---------------------------------------------------------------------------------------------- the model
def test_pad_history_pads_and_masks():
    hist, mask = pad_history([torch.ones(2, 4), torch.zeros(0, 4), torch.full((3, 4), 2.0)], 4)
    assert hist.shape == (3, 3, 4) and mask.tolist() == [[1, 1, 0], [0, 0, 0], [1, 1, 1]]
    assert hist[0, 2].abs().sum() == 0 and hist[2, 2, 0] == 2.0
    assert pad_history([torch.zeros(0, 4)], 4)[0].shape == (1, 1, 4)      # never H = 0


def test_attention_weights_are_softmax_of_dot_products_and_zero_on_padding(embedder):
    plug = _plug(embedder, temperature=0.5)
    torch.manual_seed(1)
    h = torch.nn.functional.normalize(torch.randn(2, 3, embedder.dim), dim=-1)      # [B, H, De]
    mask = torch.tensor([[True, True, False], [True, False, False]])
    h[0, 2] = 100.0                                                                  # garbage in padding slots
    h[1, 1:] = -50.0
    queries = ["comedy movie", "a paper title"]
    with torch.no_grad():
        w = plug.item_weights(h.masked_fill(~mask.unsqueeze(-1), 0), mask, queries)
        x = plug.encode_queries(queries)                                             # [B, De]
        expect0 = torch.softmax(torch.stack([h[0, 0] @ x[0], h[0, 1] @ x[0]]) / 0.5, 0)
        assert torch.allclose(w[0, :2], expect0, atol=1e-6) and w[0, 2] == 0
        assert w[1].tolist() == [1.0, 0.0, 0.0]
        soft = plug(h, mask, queries)                                                 # [B, 2, L]
        # one real item -> the user token is the rescaled projection of that item alone
        assert torch.allclose(soft[1, 1], SCALE * _unit(plug.proj(h[1, 0])), atol=1e-5)
        h2 = h.clone()
        h2[0, 2], h2[1, 1:] = 0.0, 7.0
        assert torch.allclose(plug(h2, mask, queries), soft)                          # padding never matters


def test_soft_tokens_have_the_scale_norm_and_declared_count(embedder):
    h, mask = pad_history([torch.randn(4, embedder.dim), torch.randn(1, embedder.dim)], embedder.dim)
    with torch.no_grad():
        for kw, P in [({}, 2), ({"use_instruction": False}, 1), ({"use_user": False}, 1),
                      ({"n_user_tokens": 3}, 4), ({"mode": "mean", "n_user_tokens": 2}, 3)]:
            soft = _plug(embedder, **kw)(h, mask, ["q one", "q two"])
            assert soft.shape == (2, P, D_LLM), kw
            assert torch.allclose(soft.norm(dim=-1), torch.full((2, P), SCALE), atol=1e-5), kw


def test_official_scale_mode_is_the_linear_form_of_the_code(embedder):
    plug = _plug(embedder, scale_mode="official")
    h = torch.randn(1, 1, embedder.dim)
    with torch.no_grad():
        soft = plug(h, torch.ones(1, 1, dtype=torch.bool), ["q"])
        assert torch.allclose(soft[0, 0], SCALE * plug.inst_proj(plug.inst_token) / 7.0, atol=1e-5)
        assert torch.allclose(soft[0, 1], SCALE * plug.proj(h[0, 0]), atol=1e-5)


def test_empty_history_is_defined_and_equals_the_projection_of_zero(embedder):
    for mode in ("attention", "mean"):
        plug = _plug(embedder, mode=mode)
        h, mask = pad_history([torch.zeros(0, embedder.dim), torch.randn(2, embedder.dim)], embedder.dim)
        with torch.no_grad():
            soft = plug(h, mask, ["", "some query"])
            assert torch.isfinite(soft).all(), mode
            assert torch.allclose(soft[0, 1], SCALE * _unit(plug.proj(torch.zeros(embedder.dim))), atol=1e-5)


def test_mean_mode_averages_projections_and_ignores_the_query(embedder):
    plug = _plug(embedder, mode="mean")
    assert plug.input_encoder is None                                                # nothing to encode
    h = torch.randn(1, 3, embedder.dim)
    mask = torch.tensor([[True, True, False]])
    with torch.no_grad():
        a = plug(h, mask, ["comedy movie"])
        b = plug(h, mask, ["paper title review"])
        expect = SCALE * _unit((plug.proj(h[0, 0]) + plug.proj(h[0, 1])) / 2)
    assert torch.equal(a, b) and torch.allclose(a[0, 1], expect, atol=1e-5)


def test_attention_mode_depends_on_the_query(embedder):
    plug = _plug(embedder, temperature=0.05)
    h = torch.nn.functional.normalize(torch.randn(1, 4, embedder.dim), dim=-1)
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        a, b = plug(h, mask, ["comedy movie"]), plug(h, mask, ["paper title review score"])
    assert torch.equal(a[:, 0], b[:, 0]) and not torch.allclose(a[:, 1], b[:, 1])   # instruction token is shared


def test_noinst_drops_exactly_the_instruction_token_and_tasktuned_ignores_the_user(embedder):
    h, mask = pad_history([torch.randn(3, embedder.dim), torch.randn(5, embedder.dim)], embedder.dim)
    q = ["comedy movie", "paper title"]
    with torch.no_grad():
        full = _plug(embedder)(h, mask, q)                       # same seed: the projector is built first in both
        noinst = _plug(embedder, use_instruction=False)(h, mask, q)
        task = _plug(embedder, use_user=False)(h, mask, q)
    assert torch.allclose(noinst, full[:, 1:], atol=1e-6)
    assert task.shape == (2, 1, D_LLM) and torch.equal(task[0], task[1])


def test_input_encoder_is_a_trainable_copy_and_the_pooler_stays_frozen(embedder):
    plug = _plug(embedder)
    assert plug.input_encoder is not embedder.module
    own = dict(plug.input_encoder.named_parameters())
    assert all(p.requires_grad == (".pooler." not in f".{n}") for n, p in own.items())
    shared = {p.data_ptr() for p in embedder.module.parameters()}
    assert not shared & {p.data_ptr() for p in own.values()}                          # its own storage
    frozen = _plug(embedder, train_input_encoder=False)
    assert not any(p.requires_grad for p in frozen.input_encoder.parameters())
    n_mlp = 2 * (embedder.dim * D_LLM + D_LLM + D_LLM * D_LLM + D_LLM) + embedder.dim
    assert frozen.n_trainable() == n_mlp                                                # hand count
    assert set(frozen.trainable_state()) == {"inst_token", "inst_proj.0.weight", "inst_proj.0.bias",
                                             "inst_proj.2.weight", "inst_proj.2.bias", "proj.0.weight",
                                             "proj.0.bias", "proj.2.weight", "proj.2.bias"}


def test_a_frozen_input_encoder_stays_in_eval_mode_while_the_plug_trains(embedder):
    """No dropout in a frozen encoder while training (it is a fixed function, as at prediction); a trainable one
    follows the plug's mode."""
    frozen = _plug(embedder, train_input_encoder=False).train()
    assert frozen.training and frozen.proj.training and not frozen.input_encoder.training
    assert not any(m.training for m in frozen.input_encoder.modules())
    trained = _plug(embedder, train_input_encoder=True).train()
    assert trained.input_encoder.training
    h, mask = torch.randn(2, 3, embedder.dim), torch.ones(2, 3, dtype=torch.bool)
    q = ["a comedy about a user", "the review score"]
    assert torch.equal(frozen(h, mask, q), frozen(h, mask, q))               # deterministic while training
    assert torch.equal(frozen(h, mask, q), frozen.eval()(h, mask, q))       # and the same as at prediction


def names_of(plug, group) -> set[str]:
    names = {id(p): n for n, p in plug.named_parameters()}
    return {names[id(p)] for p in group["params"]}


def test_weight_decay_spares_biases_norms_and_the_instruction_vector(embedder):
    plug = _plug(embedder, train_input_encoder=True)
    enc_decay, enc_rest, decay, rest = plug.param_groups(1e-4, lr=1e-3, encoder_lr=1e-5)
    assert enc_decay["lr"] == enc_rest["lr"] == 1e-5 and decay["lr"] == rest["lr"] == 1e-3
    assert all(names_of(plug, g).pop().startswith("input_encoder.") for g in (enc_decay, enc_rest))
    decay["params"] += enc_decay["params"]
    rest["params"] += enc_rest["params"]
    names = {id(p): n for n, p in plug.named_parameters()}
    no_decay = {names[id(p)] for p in rest["params"]}
    assert decay["weight_decay"] == 1e-4 and rest["weight_decay"] == 0.0
    assert "inst_token" in no_decay and "proj.0.bias" in no_decay
    assert any("LayerNorm" in n or "norm" in n.lower() for n in no_decay)
    assert {names[id(p)] for p in decay["params"]} >= {"proj.0.weight", "proj.2.weight", "inst_proj.0.weight"}
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in rest["params"])
    assert len(decay["params"]) + len(rest["params"]) == sum(p.requires_grad for p in plug.parameters())


def test_invalid_settings_are_rejected(embedder):
    with pytest.raises(ValueError, match="no soft token"):
        _plug(embedder, use_instruction=False, use_user=False)
    with pytest.raises(ValueError, match="mode"):
        _plug(embedder, mode="max")


# ---------------------------------------------------------------------------------------------- data path
def _item(i: int, n: int) -> PlugItem:
    return PlugItem(id=f"q{i}", prompt="p", target="t", query="q", history=tuple(range(10 * i, 10 * i + n)))


def test_augmentation_follows_the_official_rule_and_is_seeded():
    items = [_item(0, 2), _item(1, 6), _item(2, 3)]
    out = augment(items, copies=4, seed=0)
    assert len(out) == 1 + 5 + 5                                   # n <= 2: no copies; else original + 4
    assert out[0] == items[0] and out[1] == items[1] and out[6] == items[2]
    for copy in out[2:6]:
        kept = copy.history
        assert set(kept) < set(items[1].history)                 # a strict subset of the original
        assert 6 - (int(6 * 0.5) + 1) <= len(kept) <= 5            # del_n = int(n * U(0, .5)) + 1 in [1, 4]
    assert augment(items, 4, seed=0) == out and augment(items, 4, seed=1) != out


def test_collate_keeps_the_last_cap_items_in_list_order():
    table = torch.arange(30, dtype=torch.float32).view(10, 3)     # row r = [3r, 3r+1, 3r+2]
    batch = PlugBatches(table, cap=2)([PlugItem("a", "p", None, "q", (1, 4, 7)), PlugItem("b", "p", None, "q", ())])
    assert batch["history"].shape == (2, 2, 3)
    assert batch["history"][0, :, 0].tolist() == [12.0, 21.0]      # rows 4 and 7: the last two
    assert batch["mask"].tolist() == [[True, True], [False, False]]


def test_checkpoint_selection_holds_out_training_users_only():
    exs = [Example(id=str(i), user_id=f"u{i % 5}", input="x", gold="y") for i in range(20)]
    fit, held = split_by_user(exs, 0.2, seed=0)
    assert len(held) == 4 and len({e.user_id for e in held}) == 1
    assert not {e.user_id for e in fit} & {e.user_id for e in held} and len(fit) + len(held) == 20


def test_linear_warmup_then_linear_decay():
    f = linear_warmup_decay(100, 0.05)                             # warmup = ceil(5) = 5 steps
    assert [f(0), f(2), f(5), f(100)] == [0.0, 0.4, 1.0, 0.0]
    assert math.isclose(f(52.5), 0.5)


# ---------------------------------------------------------------------------------------------- the method
FAST = ("method.epochs=1", "method.max_steps=-1", "method.batch_size=2", "method.accumulate_grad_batches=1",
        "method.augment_copies=1", "method.predict_batch_size=3", "decoding.answer_mode=choice")


def _ctx(backbone_dir, tiny_overrides, method: str = "pplug", *extra: str):
    from benchmark.runs.config import compose
    from benchmark.contract.context import Context
    from benchmark.cache.store import Store

    cfg = compose("LaMP_2", method, tiny_overrides(backbone_dir, *FAST, *extra), profile="test")
    return Context(cfg, store=Store(cfg.run.cache_dir))


def _method(ctx):
    from benchmark.contract.registry import get_method
    return get_method(str(ctx.cfg.method.name))(ctx)


def _examples(n: int, tag: str = "t") -> list[Example]:
    from benchmark.data.tasks import load_task
    spec = load_task("LaMP_2")
    out = []
    for i in range(n):
        profile = tuple({"id": f"{tag}{i}p{j}", "description": f"the movie {j} of user {i % 3} is a comedy",
                         "tag": spec.labels[(i + j) % 15]} for j in range(i % 4))          # i % 4 == 0: empty
        out.append(Example(id=f"{tag}{i}", user_id=f"u{i % 3}", gold=spec.labels[i % 5], profile=profile,
                           input=spec.input_template.format(description=f"a movie {i} about a user")))
    return out


def _batch(method, examples):
    from personaplug.data import PlugData, history_table, make_items
    table, rows = history_table(method.ctx, examples)
    items = make_items(method.ctx, examples, method.prompts(examples), rows, query=method.cfg.query, with_targets=True)
    return PlugData(table, cap=512).collate(items)


def test_gradient_reaches_only_the_plug_and_soft_tokens_come_first(tiny_backbone_dir, tiny_overrides):
    ctx = _ctx(tiny_backbone_dir, tiny_overrides)
    method = _method(ctx)
    module = method.make_module(method.build_plug())
    batch = _batch(method, _examples(3))
    seen = {}

    def grab(mod, args, kwargs):
        seen.setdefault("embeds", kwargs["inputs_embeds"].detach().clone())
        seen.setdefault("mask", kwargs["attention_mask"].clone())
    hook = ctx.lm.model.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        soft = module(batch)                                                               # [B, 2, L]
        ctx.lm.loss(batch["prompts"], batch["targets"], prefix=soft).backward()
    finally:
        hook.remove()
    assert all(p.grad is None for p in ctx.lm.model.parameters())                          # LLM untouched
    for name, p in module.plug.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
    assert module.plug.inst_token.grad.abs().sum() > 0 and module.plug.proj[2].weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.plug.input_encoder.parameters())
    embeds, mask, emb = seen["embeds"], seen["mask"], ctx.lm.input_embeddings.weight
    for b, prompt in enumerate(batch["prompts"]):
        first = int(mask[b].nonzero()[0]) + ctx.lm.input_offset   # causal: left padding + chat opening; T5: 0
        assert ctx.lm.kind == "causal" or first == 0
        ids = ctx.lm.prompt_ids(prompt)
        assert torch.allclose(embeds[b, first:first + 2], soft[b].detach(), atol=1e-6)
        assert torch.equal(embeds[b, first + 2], emb[ids[ctx.lm.input_offset]])          # then the task text


def test_a_trainable_llm_is_refused(tiny_causal_dir, tiny_overrides):
    ctx = _ctx(tiny_causal_dir, tiny_overrides)
    method = _method(ctx)
    plug = method.build_plug()
    ctx.lm.model.lm_head.weight.requires_grad_(True)
    try:
        with pytest.raises(RuntimeError, match="frozen"):
            method.make_module(plug)
    finally:
        ctx.lm.model.requires_grad_(False)


@pytest.mark.slow
def test_same_seed_same_predictions_and_the_cache_skips_training(tiny_backbone_dir, tiny_overrides):
    from benchmark.data.tasks import load_task
    train, evals = _examples(8), _examples(5, tag="e")
    runs = []
    for cache in ("false", "false", "true", "true"):
        method = _method(_ctx(tiny_backbone_dir, tiny_overrides, "pplug", f"method.cache={cache}"))
        method.fit(train)
        runs.append((method, method.predict(evals)))
    (m1, p1), (m2, p2), (m3, p3), (m4, p4) = runs
    assert p1 == p2 == p3 == p4 and len(p1.outputs) == 5 and set(p1.outputs) <= set(load_task("LaMP_2").labels)
    assert p1.raw == p1.outputs                                               # choice mode: raw = the label
    s1, s2 = m1.module.plug.trainable_state(), m4.module.plug.trainable_state()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not m3.info["checkpoint_cached"] and m4.info["checkpoint_cached"]
    assert m4.info["train_steps"] == m1.info["train_steps"] == 5              # (8 + 2 copies) / batch 2
    cost = m4.cost()
    assert cost["trainable_params"] == m4.module.plug.n_trainable() > 0 and cost["stored_bytes_per_user"] == 0
    assert math.isclose(cost["soft_token_scale"], m4.ctx.lm.embedding_norm(), rel_tol=1e-6)
    assert cost["checkpoint_bytes"] == 4 * cost["trainable_params"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pplug_mean", "pplug_noinst", "tasktuned"])
def test_variants_fit_and_predict(method, tiny_causal_dir, tiny_overrides):
    m = _method(_ctx(tiny_causal_dir, tiny_overrides, method, "method.max_steps=2", "method.cache=false"))
    m.fit(_examples(4))
    out = m.predict(_examples(3, tag="e"))
    assert len(out.outputs) == 3 and m.info["train_steps"] == 2
    soft = m.soft_tokens(_examples(3, tag="e"))
    assert soft.shape[1] == (1 if method != "pplug_mean" else 2)
    if method == "tasktuned":
        assert torch.equal(soft[0], soft[1]) and m.cost()["trainable_params"] == m.module.plug.n_trainable()


def test_a_variant_refuses_a_config_that_contradicts_it(tiny_causal_dir, tiny_overrides):
    with pytest.raises(ValueError, match="pplug_mean.*mode"):
        _method(_ctx(tiny_causal_dir, tiny_overrides, "pplug_mean", "method.mode=attention"))


@pytest.mark.slow
def test_val_loss_selection_uses_held_out_training_users_and_records_the_curves(tiny_causal_dir, tiny_overrides):
    m = _method(_ctx(tiny_causal_dir, tiny_overrides, "pplug", "method.select=val_loss", "method.epochs=2",
                     "method.select_fraction=0.34", "method.cache=false", "method.val_checks_per_epoch=2"))
    m.fit(_examples(9))
    info, checks, steps = m.info, m.curve["checks"], m.curve["steps"]
    assert info["heldout_questions"] == 3 and info["train_questions"] == 6           # one of three users
    assert len(checks) == 1 + 2 * 2 and checks[-1]["step"] == info["train_steps"]     # before training + 2 an epoch
    assert checks[0]["step"] == 0 and info["checkpoint"]["select"] == "val_loss"
    assert round(info["checkpoint"]["val_loss"], 5) == min(c["val_loss"] for c in checks) == info["val_loss_best"]
    assert [p["step"] for p in steps] == list(range(1, info["train_steps"] + 1))    # every optimizer step
    assert steps[0]["lr"] == 0.0 and all(p["lr"] > 0 for p in steps[1:-1])           # warmup from 0, then decay
    for c in checks:                                                                  # the evidence of every check
        assert c["inst_norm"] > 0 and c["user_norm"] > 0
        assert 0 <= c["attn_entropy"] <= c["attn_uniform"] + 1e-6 and c["attn_entropy_sd"] >= 0
    diag = m.diagnostics()
    assert set(diag) == {"plug_steps.jsonl", "plug_checks.jsonl"}
    assert diag["plug_checks.jsonl"][0]["embedding_norm"] == pytest.approx(m.ctx.lm.embedding_norm(), rel=1e-3)


@pytest.mark.slow
def test_patience_stops_training_on_the_held_out_loss(tiny_causal_dir, tiny_overrides):
    m = _method(_ctx(tiny_causal_dir, tiny_overrides, "pplug", "method.select=val_loss", "method.epochs=30",
                     "method.select_fraction=0.34", "method.cache=false", "method.patience=1", "method.lr=1.0"))
    m.fit(_examples(9))
    vals = [c["val_loss"] for c in m.curve["checks"]]
    assert m.info["stopped_early"] and m.info["epochs_run"] < 30
    assert vals[-1] >= min(vals[:-1])                                                # the last check did not improve


@pytest.mark.slow
def test_pplug_rag_trains_and_predicts_on_the_bm25_prompt(tiny_seq2seq_dir, tiny_overrides):
    from benchmark.models.prompts import rag_prompts
    m = _method(_ctx(tiny_seq2seq_dir, tiny_overrides, "pplug_rag", "method.max_steps=1", "method.cache=false"))
    train, evals = _examples(4), _examples(4, tag="e")
    m.fit(train)
    out = m.predict(evals)
    assert len(out.outputs) == 4 and out.prompts == rag_prompts(m.ctx, evals, "bm25", 1)
    assert out.prompts[0] == evals[0].input != out.prompts[1]             # empty profile: plain input
    assert m.cost()["n_soft_tokens"] == 2
    assert len(out.extras["rag_items_cut"]) == 4 and m.cost()["n_rag_items_cut"] == sum(out.extras["rag_items_cut"])


# ---------------------------------------------------------------------------------------------- pplug_labels
def test_label_channel_adds_one_token_from_the_attention_weighted_label_distribution(embedder):
    plug = _plug(embedder, n_labels=3, scale_mode="official")
    assert plug.n_tokens == 3                                                  # instruction, user, label
    h = _unit(torch.randn(2, 4, embedder.dim))
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    labels = torch.tensor([[0, 0, 2, -1], [1, -1, -1, -1]])
    q = ["a comedy", "a review"]
    out = plug(h, mask, q, labels)                                             # [2, 3, L]
    w = plug.last_weights
    dist0 = torch.tensor([w[0, 0] + w[0, 1], 0.0, w[0, 2]]) / w[0, :3].sum()
    expect0 = plug.label_proj(dist0) * plug.scale
    assert torch.allclose(out[0, 2], expect0, atol=1e-5)
    assert torch.allclose(out[1, 2], plug.label_proj(torch.tensor([0.0, 1.0, 0.0])) * plug.scale, atol=1e-5)
    other = plug(h, mask, q, torch.tensor([[1, 1, 1, -1], [1, -1, -1, -1]]))
    assert not torch.allclose(other[0, 2], out[0, 2]) and torch.equal(other[:, :2], out[:, :2])
    none = plug(h, mask, q, torch.full((2, 4), -1))                            # no known label: LabelProj(0)
    assert torch.allclose(none[0, 2], plug.label_proj(torch.zeros(3)) * plug.scale, atol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        plug(h, mask, q)


def test_item_labels_follow_their_items_through_augmentation_and_the_cap():
    from benchmark.data.tasks import load_task
    from personaplug.data import item_label
    spec3 = load_task("LaMP_3")
    assert [item_label(spec3, {"score": s}) for s in ("5", "5.0", " 2 ", "7", "", "x")] == [4, 4, 1, -1, -1, -1]
    assert item_label(load_task("LaMP_2"), {"tag": "comedy"}) == 2
    it = PlugItem(id="a", prompt="p", target="t", query="q", history=tuple(range(10, 20)), labels=tuple(range(10)))
    for copy in augment([it], 5, seed=0)[1:]:
        assert [r - 10 for r in copy.history] == list(copy.labels)             # same positions kept
    old = augment([replace_labels(it)], 5, seed=0)
    assert [c.history for c in old] == [c.history for c in augment([it], 5, seed=0)]   # labels change nothing else
    batch = PlugBatches(torch.randn(30, 4), cap=3)([it])
    assert batch["labels"].tolist() == [[7, 8, 9]]


def replace_labels(item):
    from dataclasses import replace
    return replace(item, labels=())


def test_pplug_labels_declares_the_tasks_it_cannot_serve():
    from benchmark.contract.registry import get_method
    from benchmark.data.tasks import load_task
    cls = get_method("pplug_labels")
    assert cls.unsupported_reason(load_task("LaMP_2")) is None and cls.unsupported_reason(load_task("LaMP_3")) is None
    for task in ("LaMP_1", "LaMP_4", "LaMP_7"):
        assert "no labels" in cls.unsupported_reason(load_task(task))


def test_a_label_channel_without_a_user_side_is_refused():
    from benchmark.runs.config import ConfigError, compose
    with pytest.raises(ConfigError, match="label_channel=true needs method.use_user=true"):
        compose("LaMP_2", "tasktuned", ["method.label_channel=true"])


@pytest.mark.slow
def test_pplug_labels_fits_and_predicts(tiny_causal_dir, tiny_overrides):
    m = _method(_ctx(tiny_causal_dir, tiny_overrides, "pplug_labels", "method.max_steps=2", "method.cache=false"))
    m.fit(_examples(4))
    out = m.predict(_examples(3, tag="e"))
    assert len(out.outputs) == 3 and m.cost()["n_soft_tokens"] == 3
    assert m.soft_tokens(_examples(3, tag="e")).shape[1] == 3
