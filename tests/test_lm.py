"""The loading layer and the LanguageModel on tiny causal and seq2seq models (both kinds for every call)."""
from __future__ import annotations

import pytest
import torch

from benchmark.models.loading import load_backbone, load_embedder
from benchmark.data.tasks import load_task


def _lm(path, **kw):
    cfg = {"id": str(path), "kind": "auto", "chat_template": True, "dtype": "float32", "device": "cpu",
           "batch_size": 2, "max_input_tokens": 64, **kw}
    return load_backbone(cfg)


PROMPTS = ["the user likes comedy movie", "a paper title about the review score and more words here", "tweet"]


def test_kind_is_detected_from_config(tiny_causal_dir, tiny_seq2seq_dir):
    assert _lm(tiny_causal_dir).kind == "causal"
    assert _lm(tiny_seq2seq_dir).kind == "seq2seq"
    assert _lm(tiny_causal_dir).use_chat and not _lm(tiny_seq2seq_dir).use_chat


def test_same_config_loads_once(tiny_causal_dir):
    assert _lm(tiny_causal_dir) is _lm(tiny_causal_dir)


def test_batched_generation_equals_one_by_one(tiny_backbone_dir):
    lm = _lm(tiny_backbone_dir)
    batched = lm.generate(PROMPTS, max_new_tokens=5)
    single = [lm.generate([p], max_new_tokens=5)[0] for p in PROMPTS]
    assert batched == single


def _full_sequence_logp(lm, prompt: str, choice: str) -> tuple[float, int]:
    """(summed log-prob of choice + EOS, its token count) from one plain forward pass over prompt + choice."""
    ids, tgt = lm.prompt_ids(prompt), lm.target_ids(choice)
    with torch.no_grad():
        if lm.kind == "causal":
            logp = lm.model(torch.tensor([ids + tgt])).logits.log_softmax(-1)[0]
            return sum(logp[len(ids) - 1 + t, tgt[t]].item() for t in range(len(tgt))), len(tgt)
        logp = lm.model(input_ids=torch.tensor([ids]), labels=torch.tensor([tgt])).logits.log_softmax(-1)[0]
        return sum(logp[t, tgt[t]].item() for t in range(len(tgt))), len(tgt)


def test_choice_scores_match_full_sequence_scoring(tiny_backbone_dir):
    """The cached-prompt scorer equals scoring prompt+choice in one plain forward pass; by default the score
    is the summed log-probability of choice + EOS (log P of the exact string), not a per-token mean."""
    lm = _lm(tiny_backbone_dir)
    choices = ["comedy", "based on a book", "[1]"]
    scores = lm.choice_scores(PROMPTS, choices)
    per_token = lm.choice_scores(PROMPTS, choices, norm="token")
    per_byte = lm.choice_scores(PROMPTS, choices, norm="byte")
    assert scores.shape == per_token.shape == per_byte.shape == (3, 3)
    for i, p in enumerate(PROMPTS):
        for j, c in enumerate(choices):
            total, n_tokens = _full_sequence_logp(lm, p, c)
            assert scores[i, j].item() == pytest.approx(total, abs=1e-4)
            assert per_token[i, j].item() == pytest.approx(total / n_tokens, abs=1e-4)
            assert per_byte[i, j].item() == pytest.approx(total / len(c.encode()), abs=1e-4)


def test_choice_norm_is_declared_and_validated(tiny_backbone_dir):
    """``decoding.choice_norm`` decides which score ``answer`` ranks by (default ``sum``); unknown names fail."""
    from benchmark.models.lm import choice_norm
    lm = _lm(tiny_backbone_dir)
    spec = load_task("LaMP_2")
    for norm in ("sum", "token", "byte"):
        _, final = lm.answer(PROMPTS, spec, {"answer_mode": "choice", "choice_norm": norm})
        best = lm.choice_scores(PROMPTS, spec.labels, norm=norm).argmax(-1).tolist()
        assert final == [spec.labels[j] for j in best]
    assert choice_norm({}) == "sum"
    with pytest.raises(ValueError, match="choice_norm"):
        lm.answer(PROMPTS, spec, {"answer_mode": "choice", "choice_norm": "mean"})


def test_prefix_goes_in_front_of_the_prompt(tiny_backbone_dir):
    """Soft tokens are the first real positions: causal rows are left-padded, seq2seq rows right-padded."""
    lm = _lm(tiny_backbone_dir)
    rows = [lm.prompt_ids(p) for p in PROMPTS[:2]]
    prefix = torch.randn(2, 2, lm.hidden_size)                                   # [N, P, D]
    embeds, mask, pos = lm._assemble(rows, prefix)
    at = lm.input_offset                        # chat opening / BOS tokens stay in front (T5: none)
    assert at == (0 if lm.kind == "seq2seq" else len(lm.template_head)) and rows[0][:at] == lm.template_head
    for i, ids in enumerate(rows):
        first = int(mask[i].nonzero()[0]) if lm.kind == "causal" else 0
        expected = lm.input_embeddings(torch.tensor(ids))
        assert torch.allclose(embeds[i, first:first + at], expected[:at])
        assert torch.equal(embeds[i, first + at:first + at + 2], prefix[i])
        assert pos[i, first].item() == 0
        assert torch.allclose(embeds[i, first + at + 2:first + 2 + len(ids)], expected[at:])
        assert int(mask[i].sum()) == len(ids) + 2


def test_loss_covers_targets_only_and_reaches_the_prefix(tiny_backbone_dir):
    lm = _lm(tiny_backbone_dir)
    prefix = torch.zeros(2, 1, lm.hidden_size, requires_grad=True)
    loss = lm.loss(PROMPTS[:2], ["comedy", "action"], prefix=prefix)
    loss.backward()
    assert torch.isfinite(loss) and prefix.grad is not None and prefix.grad.abs().sum() > 0
    assert all(p.grad is None for p in lm.model.parameters())   # the LLM is frozen


def test_loss_equals_one_by_one_full_sequence_cross_entropy(tiny_backbone_dir):
    """The batched loss (LM head on target positions only) is the token-weighted mean of each example's
    cross-entropy computed the plain way: the whole unpadded sequence through the model, HF's own ``labels``."""
    lm = _lm(tiny_backbone_dir)
    prompts, targets = PROMPTS, ["comedy", "a much longer target with several words", "x"]
    batched = lm.loss(prompts, targets)
    total, count = 0.0, 0
    for p, t in zip(prompts, targets):
        rows, tgt = lm.prompt_ids(p), lm.target_ids(t)
        if lm.kind == "causal":
            ids = torch.tensor([rows + tgt])
            labels = torch.tensor([[-100] * len(rows) + tgt])
            out = lm.model(input_ids=ids, labels=labels)
        else:
            out = lm.model(input_ids=torch.tensor([rows]), labels=torch.tensor([tgt]))
        total, count = total + float(out.loss) * len(tgt), count + len(tgt)
    assert float(batched) == pytest.approx(total / count, rel=1e-5, abs=1e-6)


def test_a_target_cut_to_the_budget_keeps_its_eos(tiny_backbone_dir):
    """A target longer than max_target_tokens loses text, never its EOS: training still teaches the model to stop
    within the generation budget, and the loss is the one of exactly those tokens."""
    lm = _lm(tiny_backbone_dir)
    long = "a much longer target with several words"
    full = lm.target_ids(long)
    cut = lm.target_ids(long, 3)
    assert len(full) > 3 and cut == full[:2] + [full[-1]] and cut[-1] == lm.tokenizer.eos_token_id
    assert lm.target_ids("x", 3) == lm.target_ids("x")                      # short targets are untouched
    rows = lm.prompt_ids(PROMPTS[0])
    if lm.kind == "causal":
        out = lm.model(input_ids=torch.tensor([rows + cut]), labels=torch.tensor([[-100] * len(rows) + cut]))
    else:
        out = lm.model(input_ids=torch.tensor([rows]), labels=torch.tensor([cut]))
    assert float(lm.loss(PROMPTS[:1], [long], max_target_tokens=3)) == pytest.approx(float(out.loss), rel=1e-5)


def test_suffix_placement_loss_equals_one_pass_with_the_soft_tokens_before_the_answer(tiny_causal_dir):
    """The suffix loss (prompt once without autograd, then soft tokens + target on its cache) is the plain
    one-pass cross-entropy of [prompt ; soft tokens ; target], and the gradient still reaches the soft tokens."""
    lm = _lm(tiny_causal_dir)
    prompts, targets = PROMPTS, ["comedy", "a much longer target with several words", "x"]
    torch.manual_seed(0)
    soft = torch.randn(3, 2, lm.hidden_size, requires_grad=True)
    loss = lm.loss(prompts, targets, prefix=soft, placement="suffix")
    loss.backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0
    total, count = 0.0, 0
    for i, (p, t) in enumerate(zip(prompts, targets)):
        rows, tgt = lm.prompt_ids(p), lm.target_ids(t)
        emb = lm.input_embeddings(torch.tensor(rows + tgt))
        embeds = torch.cat([emb[:len(rows)], soft[i].detach(), emb[len(rows):]])[None]
        labels = torch.tensor([[-100] * (len(rows) + 2) + tgt])
        total += float(lm.model(inputs_embeds=embeds, labels=labels).loss) * len(tgt)
        count += len(tgt)
    assert float(loss) == pytest.approx(total / count, rel=1e-4)
    with pytest.raises(ValueError, match="placement must be one of"):
        lm.soft_positions([[1]], "middle")


def test_suffix_placement_is_refused_on_seq2seq(tiny_seq2seq_dir):
    lm = _lm(tiny_seq2seq_dir)
    with pytest.raises(ValueError, match="decoder-only"):
        lm.loss(PROMPTS[:1], ["x"], prefix=torch.zeros(1, 1, lm.hidden_size), placement="suffix")


def test_answer_modes(tiny_backbone_dir):
    lm = _lm(tiny_backbone_dir)
    spec = load_task("LaMP_2")
    raw, final = lm.answer(PROMPTS, spec, {"answer_mode": "choice"})
    assert all(f in spec.labels for f in final)
    raw, final = lm.answer(PROMPTS, spec, {"answer_mode": "generate", "max_new_tokens": 3})
    assert final == raw
    gen = load_task("LaMP_4")
    _, final = lm.answer(PROMPTS, gen, {"answer_mode": "choice", "max_new_tokens": 3})  # generation ignores choice
    assert len(final) == 3


def test_long_prompts_are_truncated_and_counted(tiny_causal_dir):
    lm = _lm(tiny_causal_dir, max_input_tokens=4)
    before = lm.n_truncated
    ids = lm.prompt_ids("the a of and is for to in movie user")
    assert lm.n_truncated == before + 1
    assert len(ids) < 4 + 10   # 4 content tokens + the tiny chat template's own tokens


def test_tiny_embedder_encodes_and_differentiates(tiny_embedder_dir):
    emb = load_embedder({"id": str(tiny_embedder_dir), "pooling": "mean", "normalize": True})
    vecs = emb.encode(["the movie", "a paper"])
    assert vecs.shape == (2, emb.dim)
    assert torch.allclose(vecs.norm(dim=-1), torch.ones(2), atol=1e-5)
    out = emb.embed(emb.module, emb.tokenize(["the movie"]))
    assert torch.allclose(out.detach(), vecs[:1], atol=1e-5)


@pytest.mark.embedded
def test_embedded_models_load_offline():
    lm = load_backbone({"id": "smollm2-135m-instruct", "device": "cpu", "max_input_tokens": 256})
    assert lm.kind == "causal" and lm.hidden_size == 576 and lm.use_chat
    assert "capital" in lm.generate(["What is the capital of France? Answer in one word."], max_new_tokens=12)[0] \
        or "Paris" in lm.generate(["What is the capital of France? Answer in one word."], max_new_tokens=12)[0]
    emb = load_embedder({"id": "all-minilm-l6-v2"})
    v = emb.encode(["A man is playing a guitar.", "Someone strums a guitar.", "The stock market fell."])
    assert emb.dim == 384 and emb.ident["pooling"] == "mean"
    assert (v[0] @ v[1]) > (v[0] @ v[2]) + 0.3
