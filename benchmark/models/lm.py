"""LanguageModel: one interface over decoder-only and seq2seq Hugging Face models.

Every method talks to the backbone through three calls, so decoding, batching and soft-token injection are
written once:

* ``generate(prompts, prefix=None)``        greedy or beam decoding, length-sorted batches, KV cache on;
* ``choice_scores(prompts, choices, prefix, norm)`` log-probability of each choice + EOS (``norm``: ``sum``, the
                                              probability of the exact string; ``token`` or ``byte`` normalised),
                                              the prompt encoded once per example;
* ``loss(prompts, targets, prefix)``         cross-entropy on target tokens only (training).

``prefix`` is an optional soft-token tensor ``[N, P, D]`` (Persona-Plug's user and instruction tokens). It is
placed by explicit position directly in front of the task text (``input_offset``): for T5 at encoder positions
0..P-1, as in the official code; for a decoder-only model after the chat template's opening (system turn and user
header) or after BOS, so the model's own first token, where its attention sink forms, stays first and the soft
tokens are read where the user's words begin. No vocabulary id is re-used. ``placement="suffix"`` (decoder-only,
a declared Persona-Plug option) puts them after the whole formatted prompt instead, just before the answer.
Prompts are truncated to ``max_input_tokens`` of raw text (LaMP's 256) before any chat template; the count of
truncated prompts is kept for the run row. Causal batches are left-padded with explicit position ids.
"""
from __future__ import annotations

from functools import cached_property
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


PLACEMENTS = ("prefix", "suffix")


class LanguageModel:
    def __init__(self, model, tokenizer, *, kind: str, ident: dict[str, Any], device: torch.device,
                 chat_template: bool = True, max_input_tokens: int = 256, batch_size: int = 8,
                 generate_batch_size: int | None = None, decoding: dict[str, Any] | None = None):
        assert kind in ("causal", "seq2seq"), kind
        self.model, self.tokenizer, self.kind, self.ident, self.device = model, tokenizer, kind, ident, device
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.use_chat = bool(chat_template and kind == "causal" and getattr(tokenizer, "chat_template", None))
        self.max_input_tokens = max_input_tokens
        self.batch_size = batch_size                                  # choice scoring and losses
        self.generate_batch_size = int(generate_batch_size or batch_size)  # generation
        self.decoding = decoding or {}
        self.n_truncated = 0
        self.ident["chat_template"] = self.use_chat

    # ------------------------------------------------------------------ facts
    @property
    def input_embeddings(self) -> torch.nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def hidden_size(self) -> int:
        return self.input_embeddings.weight.shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.input_embeddings.weight.dtype

    @torch.no_grad()
    def embedding_norm(self) -> float:
        """Mean L2 norm of the input-embedding rows: the scale a soft token should live at."""
        return self.input_embeddings.weight.float().norm(dim=-1).mean().item()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, n_tokens: int) -> str:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= n_tokens else self.tokenizer.decode(ids[:max(n_tokens, 0)], skip_special_tokens=True)

    # ------------------------------------------------------------------ prompt -> ids
    def prompt_ids(self, text: str, max_input_tokens: int | None = None) -> list[int]:
        limit = max_input_tokens or self.max_input_tokens
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > limit:
            self.n_truncated += 1
            text = self.tokenizer.decode(ids[:limit], skip_special_tokens=True)
        out, head = self._format(text), self.template_head
        if out[:len(head)] != head:
            raise ValueError(f"benchmark/models/lm.py: the formatted prompt does not start with the template opening "
                             f"{head} (got {out[:len(head)]}); soft tokens would land mid-token")
        return out

    def _format(self, text: str) -> list[int]:
        if self.use_chat:
            out = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                                     tokenize=True)
            return list(out["input_ids"] if hasattr(out, "keys") else out)
        return self.tokenizer(text)["input_ids"]  # seq2seq: T5 appends </s>; causal base models add BOS if set

    @cached_property
    def template_head(self) -> list[int]:
        """The tokens every formatted prompt starts with before the task text (chat opening or BOS; T5: none),
        found by formatting a probe text and locating its tokens."""
        probe = "Probe text"
        ids, body = self._format(probe), self.tokenizer(probe, add_special_tokens=False)["input_ids"]
        at = next((i for i in range(len(ids) - len(body) + 1) if ids[i:i + len(body)] == body), None)
        if at is None:
            raise ValueError(f"benchmark/models/lm.py: cannot locate the task text in the formatted prompt {ids}")
        return ids[:at]

    @property
    def input_offset(self) -> int:
        """Where soft tokens are inserted: after :attr:`template_head`, directly in front of the task text."""
        return len(self.template_head)

    def target_ids(self, text: str, max_tokens: int | None = None) -> list[int]:
        """Target tokens that end the answer: text + EOS (for T5 the same ids as its tokenizer's own ``</s>``).
        ``max_tokens`` cuts the text, never the EOS, so a long target still teaches the model to stop within the
        generation budget."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if max_tokens is not None:
            ids = ids[:max(int(max_tokens) - 1, 0)]
        return ids + [self.tokenizer.eos_token_id]

    def soft_positions(self, rows: list[list[int]], placement: str) -> list[int]:
        """Where each row's soft tokens go: ``prefix`` = in front of the task text (:attr:`input_offset`, the
        paper's placement); ``suffix`` = after the whole formatted prompt, just before the answer (decoder-only
        backbones: the prompt's keys and values then do not depend on the soft tokens)."""
        if placement not in PLACEMENTS:
            raise ValueError(f"benchmark/models/lm.py: placement must be one of {PLACEMENTS}, got {placement!r}")
        if placement == "suffix":
            if self.kind != "causal":
                raise ValueError("benchmark/models/lm.py: placement=suffix needs a decoder-only backbone (a T5 "
                                 "encoder reads its whole input at once; use placement=prefix)")
            return [len(r) for r in rows]
        return [self.input_offset] * len(rows)

    def _assemble(self, rows: list[list[int]], prefix: torch.Tensor | None,
                  at: Sequence[int] | None = None) -> tuple[torch.Tensor, ...]:
        """Embed and pad: -> inputs_embeds [B, T, D], attention_mask [B, T], position_ids [B, T].

        ``prefix`` soft tokens go at position ``at[i]`` of row i (default :attr:`input_offset`). Causal rows are
        left-padded (so generation continues from the last real token); seq2seq rows right-padded.
        """
        emb = self.input_embeddings
        at = list(at) if at is not None else [self.input_offset] * len(rows)
        parts = []
        for i, ids in enumerate(rows):
            e = emb(torch.tensor(ids, device=self.device))                                # [L, D]
            if prefix is not None:                                                        # at the soft-token slot
                e = torch.cat([e[:at[i]], prefix[i].to(device=self.device, dtype=e.dtype), e[at[i]:]], dim=0)
            parts.append(e)                                                               # [P+L, D]
        T = max(p.shape[0] for p in parts)
        D = parts[0].shape[1]
        embeds, masks = [], []
        for p in parts:
            pad = p.new_zeros(T - p.shape[0], D)
            ones = torch.ones(p.shape[0], dtype=torch.long, device=self.device)
            zeros = torch.zeros(T - p.shape[0], dtype=torch.long, device=self.device)
            if self.kind == "causal":
                embeds.append(torch.cat([pad, p])); masks.append(torch.cat([zeros, ones]))
            else:
                embeds.append(torch.cat([p, pad])); masks.append(torch.cat([ones, zeros]))
        mask = torch.stack(masks)                                                           # [B, T]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)                                      # [B, T]
        return torch.stack(embeds), mask, positions

    def _batches(self, lengths: Sequence[int], desc: str | None, size: int | None = None) -> Iterator[list[int]]:
        """Index batches, longest first (dynamic padding wastes least; OOM shows up in the first batch)."""
        size = size or self.batch_size
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches = [order[i:i + size] for i in range(0, len(order), size)]
        yield from tqdm(batches, desc=desc, leave=False,                  # quiet without a terminal (disable=None)
                        disable=True if desc is None or len(batches) < 2 else None)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 32, num_beams: int = 1,
                 prefix: torch.Tensor | None = None, desc: str | None = "generate",
                 max_input_tokens: int | None = None, placement: str = "prefix") -> list[str]:
        """Greedy (or beam) decoding; ``max_input_tokens`` overrides the prompt budget for this call (e.g. a
        summariser reading a longer history prompt than the task input budget)."""
        rows = [self.prompt_ids(p, max_input_tokens) for p in prompts]
        out: list[str] = [""] * len(rows)
        eos = {self.tokenizer.eos_token_id} | set(_as_list(getattr(self.model.generation_config, "eos_token_id", None)))
        for idx in self._batches([len(r) for r in rows], desc, self.generate_batch_size):
            part = [rows[i] for i in idx]
            embeds, mask, _ = self._assemble(part, None if prefix is None else prefix[idx],
                                             self.soft_positions(part, placement))
            seqs = self.model.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                                       num_beams=num_beams, do_sample=False, pad_token_id=self.tokenizer.pad_token_id,
                                       eos_token_id=sorted(e for e in eos if e is not None))
            # with inputs_embeds only, decoder-only generate returns just the new tokens
            for i, text in zip(idx, self.tokenizer.batch_decode(seqs, skip_special_tokens=True)):
                out[i] = text.strip()
        return out

    # ------------------------------------------------------------------ multiple choice
    @torch.no_grad()
    def choice_scores(self, prompts: Sequence[str], choices: Sequence[str], *, prefix: torch.Tensor | None = None,
                      norm: str = "sum", desc: str | None = "choices", placement: str = "prefix") -> torch.Tensor:
        """-> [N, C] score of each choice (choice text + EOS) given the prompt, under ``norm``
        (:data:`benchmark.models.answers.CHOICE_NORMS`): ``sum`` = log P(exact string), ``token`` = that sum over
        the choice's token count, ``byte`` = that sum over the choice text's UTF-8 bytes."""
        from benchmark.models.answers import choice_divisors

        rows = [self.prompt_ids(p) for p in prompts]
        cids = [self.target_ids(c) for c in choices]
        div = torch.tensor(choice_divisors(norm, choices, [len(c) for c in cids]))         # [C]
        scores = torch.zeros(len(rows), len(cids))
        for idx in self._batches([len(r) for r in rows], desc):
            part = [rows[i] for i in idx]
            embeds, mask, pos = self._assemble(part, None if prefix is None else prefix[idx],
                                               self.soft_positions(part, placement))
            if self.kind == "causal":
                logps = self._causal_choice_logp(embeds, mask, pos, cids)                   # C x [B, Lc_j]
            else:
                logps = self._seq2seq_choice_logp(embeds, mask, cids)
            scores[idx] = torch.stack([lp.sum(-1) for lp in logps], dim=1).float().cpu()   # [B, C] sum log-prob
        return scores / div

    def _causal_choice_logp(self, embeds, mask, pos, cids: list[list[int]]) -> list[torch.Tensor]:
        """Every choice scored in one packed pass over the cached prompt: -> per choice ``[B, Lc_j]`` log-probs.

        The prompt is encoded once (its KV cache, B rows, is never copied per choice). All choices' tokens then
        go through the model as one block ``[B, S]`` (S = total choice tokens) whose 4D mask lets each token see
        the prompt and the earlier tokens of its own choice only, with positions continuing the prompt's: the
        same numbers as C separate continuations, at the cost of one short forward pass.
        """
        B, T = mask.shape
        out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True,
                         logits_to_keep=1)                                               # LM head on the last position
        first = out.logits[:, -1].float().log_softmax(-1)                                # [B, V] predicts token 0
        flat = torch.tensor([t for c in cids for t in c], device=self.device)            # [S]
        owner = torch.tensor([j for j, c in enumerate(cids) for _ in c], device=self.device)   # [S] choice index
        offset = torch.tensor([o for c in cids for o in range(len(c))], device=self.device)    # [S] position in it
        S = flat.shape[0]
        same = (owner[:, None] == owner[None, :]) & (offset[None, :] <= offset[:, None])  # [S, S] own earlier tokens
        allowed = torch.cat([mask.bool()[:, None, :].expand(B, S, T), same.expand(B, S, S)], dim=-1)  # [B, S, T+S]
        tail = self.model(input_ids=flat.expand(B, S), attention_mask=self._mask_4d(allowed[:, None]),
                          position_ids=pos[:, -1:] + 1 + offset[None, :], past_key_values=out.past_key_values,
                          use_cache=True).logits.float().log_softmax(-1)                  # [B, S, V]
        result, start = [], 0
        for c in cids:
            tgt = flat[start:start + len(c)]                                              # [Lc]
            steps = torch.cat([first[:, None], tail[:, start:start + len(c) - 1]], dim=1)  # [B, Lc, V]
            result.append(steps.gather(-1, tgt.expand(B, -1)[..., None]).squeeze(-1))   # [B, Lc]
            start += len(c)
        return result

    def _mask_4d(self, allowed: torch.Tensor) -> torch.Tensor:
        """A custom ``[B, 1, Q, K]`` mask as the model's attention implementation takes it (HF passes 4D masks
        through as is): boolean for sdpa, additive (0 / dtype min) for eager."""
        impl = getattr(self.model.config, "_attn_implementation", "sdpa")
        if impl == "sdpa":
            return allowed
        if impl == "eager":
            return torch.zeros(allowed.shape, dtype=self.dtype, device=self.device).masked_fill(
                ~allowed, torch.finfo(self.dtype).min)
        raise ValueError(f"benchmark/models/lm.py: choice scoring needs a custom 4D attention mask, which attention "
                         f"implementation {impl!r} does not take; load the backbone with sdpa or eager attention, "
                         f"or use decoding.answer_mode=generate|extract")

    def _seq2seq_choice_logp(self, embeds, mask, cids: list[list[int]]) -> list[torch.Tensor]:
        """Encoder once; the decoder scores all choices as one padded batch ``[B*C, Lc]`` over the repeated
        encoder states (T5 decoders have no prompt KV cache to share)."""
        B, C, Lc = mask.shape[0], len(cids), max(len(c) for c in cids)
        targets = torch.full((C, Lc), -100, dtype=torch.long, device=self.device)
        for j, c in enumerate(cids):
            targets[j, :len(c)] = torch.tensor(c)
        labels = targets.repeat(B, 1)                                                     # [B*C, Lc]
        hidden = self.model.get_encoder()(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        logits = self.model(encoder_outputs=(hidden.repeat_interleave(C, 0),),
                            attention_mask=mask.repeat_interleave(C, 0), labels=labels).logits  # [B*C, Lc, V]
        logp = logits.float().log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
        logp = logp.view(B, C, Lc)
        return [logp[:, j, :len(c)] for j, c in enumerate(cids)]

    # ------------------------------------------------------------------ training loss
    def loss(self, prompts: Sequence[str], targets: Sequence[str], *, prefix: torch.Tensor | None = None,
             max_target_tokens: int = 128, placement: str = "prefix") -> torch.Tensor:
        """Mean cross-entropy over target tokens only (prompt, prefix and padding are ignored).

        With ``placement="suffix"`` (decoder-only) nothing before the soft tokens depends on them, so the prompt
        runs once without autograd and only the soft tokens and the target go through the graph
        (:meth:`_suffix_loss`): the same number, a fraction of the backward pass."""
        rows = [self.prompt_ids(p) for p in prompts]
        tgts = [self.target_ids(t, max_target_tokens) for t in targets]
        at = self.soft_positions(rows, placement)
        if self.kind == "seq2seq":
            embeds, mask, _ = self._assemble(rows, prefix, at)
            L = max(len(t) for t in tgts)
            labels = torch.full((len(tgts), L), -100, dtype=torch.long, device=self.device)
            for i, t in enumerate(tgts):
                labels[i, :len(t)] = torch.tensor(t)
            return self.model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
        if placement == "suffix" and prefix is not None:
            return self._suffix_loss(rows, tgts, prefix)
        joined = [r + t for r, t in zip(rows, tgts)]
        embeds, mask, pos = self._assemble(joined, prefix, at)
        # Left-padded: the targets are the last len(t) positions, predicted by the len(t) positions before them.
        # The LM head (a fifth of a small model's compute) runs on those Lt + 1 positions only, not on the prompt.
        Lt = max(len(t) for t in tgts)
        labels = torch.full((len(tgts), Lt), -100, dtype=torch.long, device=self.device)     # [B, Lt]
        for i, t in enumerate(tgts):
            labels[i, Lt - len(t):] = torch.tensor(t)
        logits = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos,
                            logits_to_keep=Lt + 1).logits[:, :-1]                              # [B, Lt, V]
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    def _suffix_loss(self, rows: list[list[int]], tgts: list[list[int]], prefix: torch.Tensor) -> torch.Tensor:
        """Causal loss with the soft tokens after the prompt: the prompt's keys and values once, without autograd
        (left-padded ``[B, T]``), then ``[soft tokens ; target]`` right-padded ``[B, P+Lt]`` on top of them."""
        with torch.no_grad():
            embeds, mask, pos = self._assemble(rows, None)                                  # [B, T, D]
            cache = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True,
                               logits_to_keep=1).past_key_values
        B, P = prefix.shape[0], prefix.shape[1]
        Lt = max(len(t) for t in tgts)
        emb = self.input_embeddings
        tail = prefix.new_zeros(B, P + Lt, prefix.shape[2]).to(self.dtype)                    # [B, P+Lt, D]
        tail_mask = torch.zeros(B, P + Lt, dtype=mask.dtype, device=self.device)            # [B, P+Lt]
        labels = torch.full((B, P + Lt), -100, dtype=torch.long, device=self.device)        # [B, P+Lt]
        parts = []
        for i, t in enumerate(tgts):
            parts.append(torch.cat([prefix[i].to(self.dtype), emb(torch.tensor(t, device=self.device)),
                                    tail.new_zeros(Lt - len(t), tail.shape[2])]))           # [P+Lt, D]
            tail_mask[i, :P + len(t)] = 1
            labels[i, P - 1:P - 1 + len(t)] = torch.tensor(t)                               # token j read at P-1+j
        tail = torch.stack(parts)
        positions = pos[:, -1:] + 1 + torch.arange(P + Lt, device=self.device)[None]          # [B, P+Lt]
        logits = self.model(inputs_embeds=tail, attention_mask=torch.cat([mask, tail_mask], dim=1),
                            position_ids=positions, past_key_values=cache, use_cache=True).logits  # [B, P+Lt, V]
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    # ------------------------------------------------------------------ the run's answer mode
    def answer(self, prompts: Sequence[str], spec, decoding: dict[str, Any] | None = None, *,
               prefix: torch.Tensor | None = None, placement: str = "prefix") -> tuple[list[str], list[str]]:
        """-> (raw outputs, final answers) under the run's declared answer mode (applied to every method alike).

        generate: the official rule, the generated text as is; extract: generate, then the first label in the text
        (benchmark.models.answers); choice: the label with the highest likelihood (label tasks only).
        """
        from benchmark.models.answers import apply_answer_mode

        dec = {**self.decoding, **(decoding or {})}
        mode = answer_mode(spec, dec)
        if mode == "choice":
            scores = self.choice_scores(prompts, spec.labels, prefix=prefix, norm=choice_norm(dec), placement=placement)
            final = [spec.labels[j] for j in scores.argmax(-1).tolist()]
            return list(final), final
        max_new_tokens, num_beams = generation_budget(spec, dec)
        raw = self.generate(prompts, max_new_tokens=max_new_tokens, num_beams=num_beams, prefix=prefix,
                            placement=placement)
        return raw, apply_answer_mode(spec, mode, raw)


def generation_budget(spec, decoding: dict[str, Any]) -> tuple[int, int]:
    """(max new tokens, beams) of a run: ``decoding.max_new_tokens`` else the task's value; ``num_beams`` else 1."""
    return int(decoding.get("max_new_tokens") or spec.max_new_tokens), int(decoding.get("num_beams") or 1)


def answer_mode(spec, decoding: dict[str, Any]) -> str:
    """The mode actually used: generation tasks always generate; label tasks follow ``decoding.answer_mode``."""
    from benchmark.models.answers import describe_answer_mode

    mode = decoding.get("answer_mode", "generate")
    describe_answer_mode(mode)  # validates against the one list of modes
    return "generate" if spec.kind == "generation" else mode


def choice_norm(decoding: dict[str, Any]) -> str:
    """The declared normalisation of choice scores (``decoding.choice_norm``; default ``sum``), validated."""
    from benchmark.models.answers import describe_choice_norm

    norm = str(decoding.get("choice_norm") or "sum")
    describe_choice_norm(norm)
    return norm


def _as_list(x) -> list:
    return [] if x is None else list(x) if isinstance(x, (list, tuple, set)) else [x]
