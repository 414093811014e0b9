"""LanguageModel: one interface over decoder-only and seq2seq Hugging Face models.

Every method talks to the backbone through three calls, so decoding, batching and soft-token injection are
written once:

* ``generate(prompts, prefix=None)``        greedy or beam decoding, length-sorted batches, KV cache on;
* ``choice_scores(prompts, choices, prefix)`` mean log-prob per token of each choice (the harness
                                              "multiple choice" mode), the prompt encoded once per example;
* ``loss(prompts, targets, prefix)``         cross-entropy on target tokens only (training).

``prefix`` is an optional soft-token tensor ``[N, P, D]`` (Persona-Plug's user and instruction tokens). It is
placed by explicit position directly in front of the task text (``input_offset``): for T5 at encoder positions
0..P-1, as in the official code; for a decoder-only model after the chat template's opening (system turn and user
header) or after BOS, so the model's own first token, where its attention sink forms, stays first and the soft
tokens are read where the user's words begin. No vocabulary id is re-used.
Prompts are truncated to ``max_input_tokens`` of raw text (LaMP's 256) before any chat template; the count of
truncated prompts is kept for the run row. Causal batches are left-padded with explicit position ids.
"""
from __future__ import annotations

from functools import cached_property
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


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

    def target_ids(self, text: str) -> list[int]:
        """Target tokens that end the answer: text + EOS (T5's tokenizer appends </s> itself)."""
        if self.kind == "seq2seq":
            return self.tokenizer(text)["input_ids"]
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]

    def _assemble(self, rows: list[list[int]], prefix: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Embed and pad: -> inputs_embeds [B, T, D], attention_mask [B, T], position_ids [B, T].

        Causal rows are left-padded (so generation continues from the last real token); seq2seq rows right-padded.
        """
        emb, at = self.input_embeddings, self.input_offset
        parts = []
        for i, ids in enumerate(rows):
            e = emb(torch.tensor(ids, device=self.device))                                # [L, D]
            if prefix is not None:                                                        # in front of the task text
                e = torch.cat([e[:at], prefix[i].to(device=self.device, dtype=e.dtype), e[at:]], dim=0)  # [P+L, D]
            parts.append(e)
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
        yield from tqdm(batches, desc=desc, leave=False, disable=desc is None or len(batches) < 2)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 32, num_beams: int = 1,
                 prefix: torch.Tensor | None = None, desc: str | None = "generate",
                 max_input_tokens: int | None = None) -> list[str]:
        """Greedy (or beam) decoding; ``max_input_tokens`` overrides the prompt budget for this call (e.g. a
        summariser reading a longer history prompt than the task input budget)."""
        rows = [self.prompt_ids(p, max_input_tokens) for p in prompts]
        out: list[str] = [""] * len(rows)
        eos = {self.tokenizer.eos_token_id} | set(_as_list(getattr(self.model.generation_config, "eos_token_id", None)))
        for idx in self._batches([len(r) for r in rows], desc, self.generate_batch_size):
            embeds, mask, _ = self._assemble([rows[i] for i in idx], None if prefix is None else prefix[idx])
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
                      desc: str | None = "choices") -> torch.Tensor:
        """-> [N, C] mean log-probability per token of each choice (choice text + EOS) given the prompt."""
        rows = [self.prompt_ids(p) for p in prompts]
        cids = [self.target_ids(c) for c in choices]
        scores = torch.zeros(len(rows), len(cids))
        for idx in self._batches([len(r) for r in rows], desc):
            embeds, mask, pos = self._assemble([rows[i] for i in idx], None if prefix is None else prefix[idx])
            if self.kind == "causal":
                logps = self._causal_choice_logp(embeds, mask, pos, cids)                   # C x [B, Lc_j]
            else:
                logps = self._seq2seq_choice_logp(embeds, mask, cids)
            scores[idx] = torch.stack([lp.mean(-1) for lp in logps], dim=1).float().cpu()  # [B, C]
        return scores

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
             max_target_tokens: int = 128) -> torch.Tensor:
        """Mean cross-entropy over target tokens only (prompt, prefix and padding are ignored)."""
        rows = [self.prompt_ids(p) for p in prompts]
        tgts = [self.target_ids(t)[:max_target_tokens] for t in targets]
        if self.kind == "seq2seq":
            embeds, mask, _ = self._assemble(rows, prefix)
            L = max(len(t) for t in tgts)
            labels = torch.full((len(tgts), L), -100, dtype=torch.long, device=self.device)
            for i, t in enumerate(tgts):
                labels[i, :len(t)] = torch.tensor(t)
            return self.model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
        joined = [r + t for r, t in zip(rows, tgts)]
        embeds, mask, pos = self._assemble(joined, prefix)
        # Left-padded: the targets are the last len(t) positions, predicted by the len(t) positions before them.
        # The LM head (a fifth of a small model's compute) runs on those Lt + 1 positions only, not on the prompt.
        Lt = max(len(t) for t in tgts)
        labels = torch.full((len(tgts), Lt), -100, dtype=torch.long, device=self.device)     # [B, Lt]
        for i, t in enumerate(tgts):
            labels[i, Lt - len(t):] = torch.tensor(t)
        logits = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos,
                            logits_to_keep=Lt + 1).logits[:, :-1]                              # [B, Lt, V]
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    # ------------------------------------------------------------------ the run's answer mode
    def answer(self, prompts: Sequence[str], spec, decoding: dict[str, Any] | None = None, *,
               prefix: torch.Tensor | None = None) -> tuple[list[str], list[str]]:
        """-> (raw outputs, final answers) under the run's declared answer mode (applied to every method alike).

        generate: the official rule, the generated text as is; extract: generate, then the first label in the text
        (benchmark.models.answers); choice: the label with the highest likelihood (label tasks only).
        """
        from benchmark.models.answers import apply_answer_mode

        dec = {**self.decoding, **(decoding or {})}
        mode = answer_mode(spec, dec)
        if mode == "choice":
            scores = self.choice_scores(prompts, spec.labels, prefix=prefix)
            final = [spec.labels[j] for j in scores.argmax(-1).tolist()]
            return list(final), final
        max_new_tokens, num_beams = generation_budget(spec, dec)
        raw = self.generate(prompts, max_new_tokens=max_new_tokens, num_beams=num_beams, prefix=prefix)
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


def _as_list(x) -> list:
    return [] if x is None else list(x) if isinstance(x, (list, tuple, set)) else [x]
