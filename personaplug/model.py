"""PersonaPlug: the user embedder of Persona-Plug (Liu et al., arXiv 2409.11901), as a plain ``nn.Module``.

What it computes (the official code, ``code/ModelForPer.py`` of rucliujn/PPlug, class ``PersonalLLM``):

* history vectors ``h_i`` (frozen embedder, precomputed through the content-hash store) come in padded
  ``[B, H, De]`` with a mask ``[B, H]``;
* a trainable *input encoder* (a deep copy of the shared embedder's module) embeds the current query with the
  embedder's query instruction: ``x_u`` ``[B, De]``;
* input-aware attention ``w = softmax_i(h_i . x_u / temperature)`` over the real items (padding masked), and the
  user tokens ``P_u = sum_i w_i Proj(h_i)`` with ``Proj = Linear(De, L) -> GELU -> Linear(L, k*L)``: the
  attention weights come from the raw history vectors, the projected vectors are the values (as in the code);
* an instruction embedding ``inst ~ U[0, 1)^De`` (``nn.Parameter``) through its own MLP of the same shape;
* output soft tokens ``[B, P, L]`` = ``[instruction token, k user tokens]`` for ``LanguageModel(prefix=...)``.

Deliberate differences from the official code (see docs/personaplug.md):

* **Scale.** The code multiplies the MLP outputs by 539.9738 (apparently FlanT5-XXL's mean input-embedding norm)
  and the instruction token also by 1/7. ``scale_mode="official"`` (default) keeps that linear form with the
  constant replaced by ``scale`` = the loaded LLM's mean input-embedding norm (``lm.embedding_norm()``, or a config
  value), so on any backbone the soft tokens start near a real token's norm and their norm is learned.
  ``scale_mode="unit"`` L2-normalises every soft token to exactly ``scale`` (only directions are learned); on the
  CPU sweep it learned more slowly (docs/personaplug.md).
* **Empty history.** The code computes softmax over an all ``-inf`` row (NaN). Here a user without history
  attends to one zero vector (the official padding row 0), so the user token is ``Proj(0)``: defined and trained
  through the projector's biases.
* ``mode="mean"`` (the paper's ablation) replaces attention by the masked mean and needs no input encoder;
  ``use_user=False`` (the non-personalised ``tasktuned`` baseline) keeps only the instruction token.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("attention", "mean")
SCALE_MODES = ("unit", "official")
OFFICIAL_INST_DIVISOR = 7.0          # ModelForPer.py: align_mlp_inst(inst_token) / 7.0 * 539.9738


def projector(d_in: int, d_llm: int, n_tokens: int = 1) -> nn.Sequential:
    """``align_mlp`` of the official code: De -> L -> GELU -> k*L (k soft tokens; the code has k = 1)."""
    return nn.Sequential(nn.Linear(d_in, d_llm), nn.GELU(), nn.Linear(d_llm, n_tokens * d_llm))


def pad_history(vectors: Sequence[torch.Tensor], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example ``[n_b, De]`` history vectors -> padded ``[B, H, De]`` and mask ``[B, H]`` (True = real item).

    H is at least 1, so a batch in which every history is empty still has one (zero, masked) slot."""
    H = max([1, *(v.shape[0] for v in vectors)])
    out = torch.zeros(len(vectors), H, dim)                                     # [B, H, De]
    mask = torch.zeros(len(vectors), H, dtype=torch.bool)                       # [B, H]
    for b, v in enumerate(vectors):
        out[b, :v.shape[0]] = v                                                 # [n_b, De]
        mask[b, :v.shape[0]] = True
    return out, mask


class PersonaPlug(nn.Module):
    """History vectors + query -> soft tokens ``[B, P, L]``; P = use_instruction + n_user_tokens * use_user."""

    def __init__(self, embedder, d_llm: int, *, scale: float, mode: str = "attention", use_instruction: bool = True,
                 use_user: bool = True, n_user_tokens: int = 1, temperature: float = 1.0,
                 train_input_encoder: bool = True, scale_mode: str = "official"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"personaplug/model.py: mode must be one of {MODES}, got {mode!r}")
        if scale_mode not in SCALE_MODES:
            raise ValueError(f"personaplug/model.py: scale_mode must be one of {SCALE_MODES}, got {scale_mode!r}")
        if not (use_instruction or use_user):
            raise ValueError("personaplug/model.py: use_instruction and use_user are both False: no soft token left")
        if n_user_tokens < 1 or temperature <= 0 or scale <= 0:
            raise ValueError(f"personaplug/model.py: need n_user_tokens >= 1, temperature > 0, scale > 0; got "
                             f"{n_user_tokens}, {temperature}, {scale}")
        self.embedder = embedder                   # shared Embedder (plain object: tokenizer, pooling, instruction)
        self.d_emb, self.d_llm = int(embedder.dim), int(d_llm)
        self.mode, self.use_instruction, self.use_user = mode, use_instruction, use_user
        self.n_user_tokens, self.temperature, self.scale = n_user_tokens, float(temperature), float(scale)
        self.scale_mode = scale_mode
        self.input_encoder: nn.Module | None = None
        if use_user and mode == "attention":
            self.input_encoder = copy.deepcopy(embedder.module)
            self.input_encoder.requires_grad_(train_input_encoder)
            for name, p in self.input_encoder.named_parameters():
                if ".pooler." in f".{name}":   # BERT's pooler output is never used by sentence pooling: no gradient
                    p.requires_grad_(False)
        self.proj = projector(self.d_emb, self.d_llm, n_user_tokens) if use_user else None
        if use_instruction:
            self.inst_token = nn.Parameter(torch.rand(self.d_emb))            # [De], U[0,1) as in the code
            self.inst_proj = projector(self.d_emb, self.d_llm, 1)

    @property
    def n_tokens(self) -> int:
        return int(self.use_instruction) + (self.n_user_tokens if self.use_user else 0)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ parts
    def encode_queries(self, queries: Sequence[str]) -> torch.Tensor:
        """The trainable input encoder on ``query_instruction + query`` -> ``x_u`` ``[B, De]``."""
        assert self.input_encoder is not None
        feats = self.embedder.tokenize(list(queries), query=True)
        feats = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in feats.items()}
        return self.embedder.embed(self.input_encoder, feats)                  # [B, De]

    def item_weights(self, history: torch.Tensor, mask: torch.Tensor, queries: Sequence[str]) -> torch.Tensor:
        """Weights over history slots ``[B, H]``: zero on padding, summing to 1 per example.

        An empty history gets uniform weight over its (zero) slots, so the user token is ``Proj(0)``."""
        empty = ~mask.any(dim=1, keepdim=True)                                  # [B, 1]
        valid = mask | empty                                                    # [B, H]
        if self.mode == "mean":
            w = valid.to(history.dtype)                                         # [B, H]
            return w / w.sum(dim=1, keepdim=True)                               # [B, H]
        x_u = self.encode_queries(queries).to(history.dtype)                   # [B, De]
        scores = torch.bmm(history, x_u.unsqueeze(-1)).squeeze(-1)             # [B, H]
        scores = (scores / self.temperature).masked_fill(~valid, float("-inf"))  # [B, H]
        return scores.softmax(dim=1)                                            # [B, H]

    def user_tokens(self, history: torch.Tensor, mask: torch.Tensor, queries: Sequence[str]) -> torch.Tensor:
        """``sum_i w_i Proj(h_i)`` -> ``[B, k, L]`` (before rescaling)."""
        assert self.proj is not None
        history = history.masked_fill(~mask.unsqueeze(-1), 0.0)                 # [B, H, De] padding rows = 0
        w = self.item_weights(history, mask, queries)                           # [B, H]
        values = self.proj(history)                                             # [B, H, k*L]
        pooled = torch.bmm(w.unsqueeze(1).to(values.dtype), values).squeeze(1)   # [B, k*L]
        return pooled.view(-1, self.n_user_tokens, self.d_llm)                  # [B, k, L]

    def instruction_token(self) -> torch.Tensor:
        inst = self.inst_proj(self.inst_token).view(1, 1, self.d_llm)           # [1, 1, L]
        return inst / OFFICIAL_INST_DIVISOR if self.scale_mode == "official" else inst

    def rescale(self, tokens: torch.Tensor) -> torch.Tensor:
        """``unit``: each soft token to norm ``scale`` (replaces ``* 539.9738`` and ``/ 7.0``);
        ``official``: the code's linear form, ``* scale`` with the LLM's norm in place of 539.9738."""
        if self.scale_mode == "official":
            return tokens * self.scale                                           # [B, P, L]
        return F.normalize(tokens, dim=-1) * self.scale                          # [B, P, L]

    # ------------------------------------------------------------------ forward
    def forward(self, history: torch.Tensor, mask: torch.Tensor, queries: Sequence[str]) -> torch.Tensor:
        """history ``[B, H, De]`` (frozen vectors), mask ``[B, H]`` bool, B query strings -> ``[B, P, L]``."""
        B = history.shape[0]
        if mask.shape != history.shape[:2] or len(queries) != B:
            raise ValueError(f"personaplug/model.py: history {tuple(history.shape)}, mask {tuple(mask.shape)} and "
                             f"{len(queries)} queries do not agree")
        history, mask = history.to(self.device), mask.to(self.device)
        parts = []
        if self.use_instruction:
            parts.append(self.instruction_token().expand(B, 1, self.d_llm))     # [B, 1, L]
        if self.use_user:
            parts.append(self.user_tokens(history, mask, queries))               # [B, k, L]
        return self.rescale(torch.cat(parts, dim=1))                            # [B, P, L]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only the parameters that train (the checkpoint; frozen copies are rebuilt from the embedder)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().cpu().clone() for k, v in self.state_dict().items() if k in names}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        missing = {n for n, p in self.named_parameters() if p.requires_grad} - set(state)
        if missing:
            raise KeyError(f"personaplug/model.py: checkpoint lacks trainable parameters {sorted(missing)[:5]}")
        self.load_state_dict(state, strict=False)

    def n_trainable(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
