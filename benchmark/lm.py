"""LanguageModel: one interface over decoder-only and seq2seq Hugging Face models.

Every method talks to the backbone through three calls, so decoding, batching and soft-token injection are
written once:

* ``generate(prompts, prefix=None)``        greedy or beam decoding, length-sorted batches, KV cache on;
* ``choice_scores(prompts, choices, prefix)`` mean log-prob per token of each choice (the harness
                                              "multiple choice" mode), the prompt encoded once per example;
* ``loss(prompts, targets, prefix)``         cross-entropy on target tokens only (training).

``prefix`` is an optional soft-token tensor ``[N, P, D]`` (Persona-Plug's user and instruction tokens). It is
placed by explicit position in front of each prompt's input embeddings: for a decoder-only model before the
(chat-formatted) prompt tokens, for a seq2seq model before the encoder input. No vocabulary id is re-used.
Prompts are truncated to ``max_input_tokens`` of raw text (LaMP's 256) before any chat template; the count of
truncated prompts is kept for the run row. Causal batches are left-padded with explicit position ids.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


class LanguageModel:
    def __init__(self, model, tokenizer, *, kind: str, ident: dict[str, Any], device: torch.device,
                 chat_template: bool = True, max_input_tokens: int = 256, batch_size: int = 8,
                 decoding: dict[str, Any] | None = None):
        assert kind in ("causal", "seq2seq"), kind
        self.model, self.tokenizer, self.kind, self.ident, self.device = model, tokenizer, kind, ident, device
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.use_chat = bool(chat_template and kind == "causal" and getattr(tokenizer, "chat_template", None))
        self.max_input_tokens = max_input_tokens
        self.batch_size = batch_size
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
        if self.use_chat:
            out = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                                     tokenize=True)
            return list(out["input_ids"] if hasattr(out, "keys") else out)
        return self.tokenizer(text)["input_ids"]  # seq2seq: T5 appends </s>; causal base models add BOS if set

    def target_ids(self, text: str) -> list[int]:
        """Target tokens that end the answer: text + EOS (T5's tokenizer appends </s> itself)."""
        if self.kind == "seq2seq":
            return self.tokenizer(text)["input_ids"]
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]

    def _assemble(self, rows: list[list[int]], prefix: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Embed and pad: -> inputs_embeds [B, T, D], attention_mask [B, T], position_ids [B, T].

        Causal rows are left-padded (so generation continues from the last real token); seq2seq rows right-padded.
        """
        emb = self.input_embeddings
        parts = []
        for i, ids in enumerate(rows):
            e = emb(torch.tensor(ids, device=self.device))                                # [L, D]
            if prefix is not None:
                e = torch.cat([prefix[i].to(device=self.device, dtype=e.dtype), e], dim=0)  # [P+L, D]
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

    def _batches(self, lengths: Sequence[int], desc: str | None) -> Iterator[list[int]]:
        """Index batches, longest first (dynamic padding wastes least; OOM shows up in the first batch)."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
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
        for idx in self._batches([len(r) for r in rows], desc):
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
        C, Lc = len(cids), max(len(c) for c in cids)
        choice_mat = torch.full((C, Lc), self.tokenizer.pad_token_id, dtype=torch.long, device=self.device)
        choice_mask = torch.zeros(C, Lc, dtype=torch.long, device=self.device)
        for j, c in enumerate(cids):
            choice_mat[j, :len(c)] = torch.tensor(c)
            choice_mask[j, :len(c)] = 1
        scores = torch.zeros(len(rows), C)
        for idx in self._batches([len(r) for r in rows], desc):
            embeds, mask, pos = self._assemble([rows[i] for i in idx], None if prefix is None else prefix[idx])
            B = len(idx)
            targets = choice_mat.repeat(B, 1)                                              # [B*C, Lc]
            tmask = choice_mask.repeat(B, 1)                                               # [B*C, Lc]
            if self.kind == "causal":
                logp = self._causal_choice_logp(embeds, mask, pos, targets, tmask, C)     # [B*C, Lc]
            else:
                logp = self._seq2seq_choice_logp(embeds, mask, targets, tmask, C)
            mean = (logp * tmask).sum(-1) / tmask.sum(-1)                                  # [B*C]
            scores[idx] = mean.view(B, C).float().cpu()
        return scores

    def _causal_choice_logp(self, embeds, mask, pos, targets, tmask, C) -> torch.Tensor:
        out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True)
        first = out.logits[:, -1].log_softmax(-1).repeat_interleave(C, 0)                # [B*C, V]
        cache = out.past_key_values
        cache.batch_repeat_interleave(C)
        full_mask = torch.cat([mask.repeat_interleave(C, 0), tmask], dim=1)                # [B*C, T+Lc]
        cpos = pos[:, -1:].repeat_interleave(C, 0) + 1 + torch.arange(targets.shape[1], device=self.device)
        nxt = self.model(input_ids=targets, attention_mask=full_mask, position_ids=cpos, past_key_values=cache,
                         use_cache=True).logits.log_softmax(-1)                            # [B*C, Lc, V]
        step_logp = torch.cat([first.unsqueeze(1), nxt[:, :-1]], dim=1)                    # predicts targets[:, t]
        return step_logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    def _seq2seq_choice_logp(self, embeds, mask, targets, tmask, C) -> torch.Tensor:
        enc = self.model.get_encoder()(inputs_embeds=embeds, attention_mask=mask)
        hidden = enc.last_hidden_state.repeat_interleave(C, 0)
        labels = targets.masked_fill(tmask == 0, -100)
        logits = self.model(encoder_outputs=(hidden,), attention_mask=mask.repeat_interleave(C, 0),
                            labels=labels).logits                                           # [B*C, Lc, V]
        return logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)

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
        labels = torch.full(mask.shape, -100, dtype=torch.long, device=self.device)
        for i, t in enumerate(tgts):                      # left-padded: targets are the last len(t) positions
            labels[i, mask.shape[1] - len(t):] = torch.tensor(t)
        return self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, labels=labels).loss

    # ------------------------------------------------------------------ the run's answer mode
    def answer(self, prompts: Sequence[str], spec, decoding: dict[str, Any] | None = None, *,
               prefix: torch.Tensor | None = None) -> tuple[list[str], list[str]]:
        """-> (raw outputs, final answers) under the run's declared answer mode (applied to every method alike).

        generate: the official rule, the generated text as is; extract: generate, then the first label in the text
        (benchmark.answers); choice: the label with the highest likelihood (label tasks only).
        """
        from benchmark.answers import apply_answer_mode

        dec = {**self.decoding, **(decoding or {})}
        mode = answer_mode(spec, dec)
        if mode == "choice":
            scores = self.choice_scores(prompts, spec.labels, prefix=prefix)
            final = [spec.labels[j] for j in scores.argmax(-1).tolist()]
            return list(final), final
        raw = self.generate(prompts, max_new_tokens=int(dec.get("max_new_tokens") or spec.max_new_tokens),
                            num_beams=int(dec.get("num_beams") or 1), prefix=prefix)
        return raw, apply_answer_mode(spec, mode, raw)


def answer_mode(spec, decoding: dict[str, Any]) -> str:
    """The mode actually used: generation tasks always generate; label tasks follow ``decoding.answer_mode``."""
    from benchmark.answers import describe_answer_mode

    mode = decoding.get("answer_mode", "generate")
    describe_answer_mode(mode)  # validates against the one list of modes
    return "generate" if spec.kind == "generation" else mode


def _as_list(x) -> list:
    return [] if x is None else list(x) if isinstance(x, (list, tuple, set)) else [x]
