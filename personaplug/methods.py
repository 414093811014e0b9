"""Registered Persona-Plug methods: ``pplug``, ``pplug_rag``, ``pplug_mean``, ``pplug_noinst``, ``pplug_labels``,
``tasktuned``.

One class does the work (:class:`PersonaPlugMethod`); the variants differ only in a config field they pin:

* ``pplug``        the official model (``code/ModelForPer.py``): instruction token + input-aware user token;
* ``pplug_rag``    the same with LaMP's BM25 k=1 retrieval prompt as the LLM input (paper Table 3; not in the
                   released code: trained and evaluated with the RAG prompt so both see the same input form);
* ``pplug_mean``   ablation: the mean of the projected history instead of input-aware attention;
* ``pplug_noinst`` ablation: no instruction token;
* ``pplug_labels`` beyond the paper: one more soft token from the history items' label distribution;
* ``tasktuned``    the instruction token only (no user token): the same training, nothing personal, so
                   ``pplug - tasktuned`` is what personalisation adds.

``fit(train)`` trains one shared plug on the training questions (each with its own profile as history, as in the
official code); the trainable state is cached in the store under a content key (backbone, embedder, task spec,
training data, method config, seed), so a rerun with the same inputs skips training. ``predict`` returns final
answers through ``ctx.lm.answer(prompts, prefix=soft_tokens)`` (the run's answer mode) in a ``Prediction``.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Sequence

import lightning as L
from omegaconf import OmegaConf

from benchmark.contract.config import MethodConfig, as_dict, check_choice
from benchmark.contract.method import Method
from benchmark.contract.prediction import Prediction
from benchmark.contract.registry import register_method
from benchmark.data.example import Example
from benchmark.cache.store import content_key
from benchmark.data.tasks import QueryRule
from personaplug.data import PlugData, augment, history_table, item_label, make_items, split_by_user
from personaplug.model import PersonaPlug
from personaplug.module import PlugModule, make_trainer

NAMESPACE = "pplug"
FORMAT = 3            # bump when a code change can change the trained weights (invalidates cached plugs)
NOT_IN_KEY = ("predict_batch_size", "progress_bar", "cache")


@dataclass
class PlugConfig(MethodConfig):
    # model (personaplug/model.py)
    mode: str = "attention"               # attention | mean
    use_instruction: bool = True
    use_user: bool = True
    n_user_tokens: int = 1                # the official code has 1
    temperature: float = 1.0              # attention temperature (the code's "/0.5" is commented out)
    learn_temperature: bool = False       # learn log(temperature), started at `temperature`
    train_input_encoder: bool = True      # the official input encoder trains
    input_encoder_lr: Optional[float] = None  # its own learning rate (null = lr, as the official code)
    placement: str = "prefix"             # prefix: in front of the task text (paper) | suffix: before the answer
    label_channel: bool = False           # pplug_labels: the history items' label distribution as one more token
    soft_token_scale: Optional[float] = None  # null = the LLM's mean input-embedding norm
    scale_mode: str = "official"          # official: MLP output * scale (inst / 7) | unit: every token norm = scale
    # data (personaplug/data.py)
    history_cap: int = 512                # last-N history items
    augment_copies: int = 10              # history-deletion copies per question with > 2 items
    # optimisation (personaplug/module.py)
    lr: float = 1e-4
    weight_decay: float = 1e-4
    warmup_ratio: float = 0.05
    epochs: int = 2                       # per task in pplug.yaml's tasks: block (LaMP_3: 1, as the official script)
    max_steps: int = -1                   # -1 = epochs decide
    batch_size: int = 2
    accumulate_grad_batches: int = 8
    grad_clip: float = 1.0
    select: str = "last"                  # last | val_loss (best check on a held-out slice of TRAIN users)
    select_fraction: float = 0.1          # that slice (also the early-stopping signal); never the eval split
    val_checks_per_epoch: int = 1         # held-out loss, attention entropy and norms this often
    patience: Optional[int] = None        # stop after this many checks without a lower held-out loss (null: off)
    # Lightning Trainer
    accelerator: str = "auto"
    devices: Any = 1
    strategy: str = "auto"                # a one-process strategy; many devices come from torchrun / srun
    precision: str = "auto"               # auto = bf16-mixed on GPU, 32 on CPU
    predict_batch_size: int = 8
    progress_bar: bool = False
    cache: bool = True                    # reuse a trained plug from the store
    # per task (tasks: block of configs/methods/pplug.yaml): the input encoder's query, cut out of the LaMP input
    query: QueryRule = field(default_factory=lambda: QueryRule(kind="???"))

    def __post_init__(self) -> None:
        check_choice(self.mode, ("attention", "mean"), "mode")
        check_choice(self.select, ("last", "val_loss"), "select")
        check_choice(self.scale_mode, ("official", "unit"), "scale_mode")
        check_choice(self.placement, ("prefix", "suffix"), "placement")
        if self.label_channel and not self.use_user:
            raise ValueError("method.label_channel=true needs method.use_user=true: the label token is built from "
                             "the user's history (without a user side there is no channel to add)")


class PersonaPlugMethod(Method):
    grid_order = 60                    # trained: after retrieval (whose BM25 cache pplug_rag reuses)
    caches = ("embeddings",)           # the history table: one embedding per distinct history text
    Config: ClassVar[type] = PlugConfig
    cfg: PlugConfig
    pinned: ClassVar[dict[str, Any]] = {}    # config values that define a variant

    def __init__(self, ctx):
        super().__init__(ctx)
        for key, value in self.pinned.items():
            if getattr(self.cfg, key) != value:
                raise ValueError(f"personaplug/methods.py: method {self.name!r} needs method.{key}={value!r}, "
                                 f"got {getattr(self.cfg, key)!r} (use another method for that variant)")
        self.module: PlugModule | None = None
        self.info: dict[str, Any] = {}
        self.curve: dict[str, Any] = {}      # {"steps": [...], "checks": [...]} of the training (diagnostics)

    # ------------------------------------------------------------------ pieces
    def prompts(self, examples: Sequence[Example]) -> list[str]:
        """The LLM input text: the official LaMP input, verbatim (as the official code feeds it)."""
        return self.prompt_set(examples)[0]

    def prompt_set(self, examples: Sequence[Example]) -> tuple[list[str], dict[str, list]]:
        """The LLM input texts and, per example, how they were built (extras for the samples file)."""
        return [ex.input for ex in examples], {}

    def epochs(self) -> int:
        return self.cfg.epochs

    def build_plug(self) -> PersonaPlug:
        L.seed_everything(self.ctx.seed, verbose=False)
        c = self.cfg
        scale = c.soft_token_scale if c.soft_token_scale else self.ctx.lm.embedding_norm()
        plug = PersonaPlug(self.ctx.embedder, self.ctx.lm.hidden_size, scale=scale, mode=c.mode,
                           use_instruction=c.use_instruction, use_user=c.use_user, n_user_tokens=c.n_user_tokens,
                           temperature=c.temperature, train_input_encoder=c.train_input_encoder,
                           scale_mode=c.scale_mode, learn_temperature=bool(c.learn_temperature),
                           n_labels=len(self.ctx.spec.labels) if c.label_channel else 0)
        return plug.to(self.ctx.lm.device)

    def make_module(self, plug: PersonaPlug) -> PlugModule:
        c = self.cfg
        return PlugModule(plug, self.ctx.lm, lr=c.lr, weight_decay=c.weight_decay, warmup_ratio=c.warmup_ratio,
                          max_target_tokens=self.ctx.lm.max_new_tokens, select=c.select,
                          encoder_lr=c.input_encoder_lr, placement=str(c.placement))

    def checkpoint_key(self, train: Sequence[Example]) -> tuple[str, dict[str, Any]]:
        """Everything that determines the trained weights, and nothing that does not."""
        h = hashlib.sha256()
        for ex in train:
            h.update(json.dumps([ex.id, ex.user_key, ex.input, ex.gold,
                                 [self.ctx.spec.history_text(i) for i in ex.profile],
                                 [item_label(self.ctx.spec, i) for i in ex.profile] if self.cfg.label_channel
                                 else []]).encode())
        method = {k: v for k, v in as_dict(self.cfg).items() if k not in NOT_IN_KEY}
        cfg = self.ctx.cfg
        parts = {"format": FORMAT, "backbone": dict(self.ctx.lm.ident), "embedder": dict(self.ctx.embedder.ident),
                 "backbone_cfg": {k: cfg.backbone[k] for k in ("max_input_tokens", "chat_template", "dtype")},
                 "query_instruction": str(cfg.embedder.query_instruction or ""),
                 "task": OmegaConf.to_container(cfg.task, resolve=True),
                 "max_target_tokens": self.ctx.lm.max_new_tokens,
                 "train": {"n": len(train), "sha256": h.hexdigest()}, "method": method, "seed": self.ctx.seed,
                 **self.key_extra()}
        return content_key(parts), parts

    def key_extra(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ fit
    def fit(self, train: Sequence[Example]) -> None:
        if not train:
            raise ValueError(f"personaplug/methods.py: {self.name} needs training questions; got none")
        plug = self.build_plug()
        key, parts = self.checkpoint_key(train)
        store = self.ctx.store
        if self.cfg.cache and store.has(NAMESPACE, key):
            saved = store.load(NAMESPACE, key)
            store.hits[NAMESPACE] += 1
            self.info = {**saved["info"], "checkpoint_cached": True}
            self.curve = saved.get("curve", {})
        else:
            saved = self._train(plug, train)
            self.info = {**saved["info"], "checkpoint_cached": False}
            self.curve = saved["curve"]
            if self.cfg.cache:
                store.misses[NAMESPACE] += 1
                store.save(NAMESPACE, key, saved, meta={**parts, "info": saved["info"]})
        self.load_checkpoint(saved["state"], plug)
        self.info["checkpoint_key"] = key

    def load_checkpoint(self, state: dict[str, Any], plug: PersonaPlug | None = None) -> None:
        """Use trained plug weights (e.g. from another process or run) instead of training."""
        plug = plug or self.build_plug()
        plug.load_trainable_state(state)
        self.module = self.make_module(plug)

    def validates(self) -> bool:
        c = self.cfg
        return float(c.select_fraction) > 0 and (c.select == "val_loss" or c.patience is not None)

    def _train(self, plug: PersonaPlug, train: Sequence[Example]) -> dict[str, Any]:
        c, seed = self.cfg, self.ctx.seed
        fit_ex, held = split_by_user(train, c.select_fraction, seed) if self.validates() else (list(train), [])
        every = list(fit_ex) + list(held)
        table, rows = history_table(self.ctx, every)                                   # [N, De]
        items = make_items(self.ctx, every, self.prompts(every), rows, query=c.query, with_targets=True,
                           with_labels=c.label_channel)
        train_items = augment(items[:len(fit_ex)], c.augment_copies, seed)
        data = PlugData(table, train=train_items, val=items[len(fit_ex):], cap=c.history_cap,
                        batch_size=c.batch_size, predict_batch_size=c.predict_batch_size, seed=seed)
        module = self.make_module(plug)
        trainer = make_trainer(c, epochs=self.epochs(), validate=bool(held), logger=self.ctx.train_logger("plug"),
                               callbacks=[self.ctx.train_bar(f"train {self.name}")], device=self.ctx.lm.device)
        module.train()                 # Lightning keeps this mode (a frozen input encoder stays in eval)
        L.seed_everything(seed, verbose=False)
        if held:                       # the check before any step: where the curves start
            trainer.validate(module, datamodule=data, verbose=False)
            module.train()
        t0 = time.perf_counter()
        trainer.fit(module, datamodule=data)
        seconds = time.perf_counter() - t0
        state, chosen = module.selected_state()
        steps = int(trainer.global_step)
        info = {"train_steps": steps, "train_questions": len(fit_ex), "train_items": len(train_items),
                "heldout_questions": len(held), "epochs_max": self.epochs(), "epochs_run": int(trainer.current_epoch),
                "stopped_early": any(isinstance(cb, L.pytorch.callbacks.EarlyStopping) and cb.wait_count >= cb.patience
                                     for cb in trainer.callbacks),
                "train_seconds": round(seconds, 2),
                "seconds_per_step": round(seconds / steps, 3) if steps else None,
                "placement": str(c.placement), **module.curve.summary(), "checkpoint": chosen}
        curve = {"steps": module.curve.compact(), "checks": module.curve.checks}
        return {"state": state, "info": info, "curve": curve}

    # ------------------------------------------------------------------ predict
    def predict(self, examples: Sequence[Example]) -> Prediction:
        if self.module is None:
            raise RuntimeError(f"personaplug/methods.py: {self.name}.predict called before fit")
        ids = [ex.id for ex in examples]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise ValueError(f"personaplug/methods.py: duplicate example ids {dup}: predictions are joined by id")
        if not examples:
            return Prediction([])
        table, rows = history_table(self.ctx, examples)                                # [N, De]
        prompts, extras = self.prompt_set(examples)
        items = make_items(self.ctx, examples, prompts, rows, query=self.cfg.query, with_targets=False,
                           with_labels=self.cfg.label_channel)
        data = PlugData(table, predict=items, cap=self.cfg.history_cap,
                        predict_batch_size=self.cfg.predict_batch_size, seed=self.ctx.seed)
        make_trainer(self.cfg, predict=True, device=self.ctx.lm.device).predict(self.module, datamodule=data,
                                                                              return_predictions=False)
        preds = self.module.predictions
        missing = [i for i in ids if i not in preds]
        if missing:
            raise RuntimeError(f"personaplug/methods.py: no prediction for example ids {missing[:5]}")
        if self.module.plug.mode == "attention" and self.module.plug.use_user:   # per question: how peaked
            ent = [self.module.predicted_entropy[i] for i in ids]
            extras = {**extras, "attn_entropy": [round(e, 4) for e, _ in ent],
                      "attn_uniform": [round(u, 4) for _, u in ent]}
        return Prediction([preds[i][1] for i in ids], raw=[preds[i][0] for i in ids], prompts=prompts, extras=extras)

    def soft_tokens(self, examples: Sequence[Example]):
        """The soft tokens ``[N, P, L]`` of these examples (inspection and tests)."""
        assert self.module is not None
        table, rows = history_table(self.ctx, examples)
        items = make_items(self.ctx, examples, [ex.input for ex in examples], rows, query=self.cfg.query,
                           with_targets=False, with_labels=self.cfg.label_channel)
        batch = PlugData(table, cap=self.cfg.history_cap).collate(items)
        return self.module(batch)

    def diagnostics(self) -> dict[str, Any]:
        """The training's evidence for the run folder: the per-step curve (loss, lr) and the validation checks
        (held-out training-user loss, attention entropy vs uniform, soft-token norms)."""
        if not self.curve:
            return {}
        emb = round(self.ctx.lm.embedding_norm(), 4)
        return {"plug_steps.jsonl": list(self.curve.get("steps", [])),
                "plug_checks.jsonl": [{**p, "embedding_norm": emb} for p in self.curve.get("checks", [])]}

    # ------------------------------------------------------------------ cost
    def cost(self) -> dict[str, Any]:
        plug = self.module.plug if self.module is not None else None
        state = plug.trainable_state() if plug is not None else {}
        return {
            "trainable_params": plug.n_trainable() if plug is not None else 0,
            "stored_bytes_per_user": 0,
            "checkpoint_bytes": sum(t.numel() * t.element_size() for t in state.values()),
            "soft_token_scale": plug.scale if plug is not None else None,
            "soft_token_scale_source": "method.soft_token_scale" if self.cfg.soft_token_scale
            else "lm.embedding_norm()",
            "n_soft_tokens": plug.n_tokens if plug is not None else 0,
            "embedding_norm": round(self.ctx.lm.embedding_norm(), 4),
            **self.info,
            "note": "one plug shared by all users: nothing is stored per user (a user's history vectors are "
                    "embedding-store entries); checkpoint = trainable parameters only",
        }


@register_method("pplug")
class PPlug(PersonaPlugMethod):
    pinned = {"mode": "attention", "use_instruction": True, "use_user": True}


@dataclass
class MeanConfig(PlugConfig):
    mode: str = "mean"


@dataclass
class LabelsConfig(PlugConfig):
    label_channel: bool = True


@register_method("pplug_labels")
class PPlugLabels(PersonaPlugMethod):
    """Beyond the paper: pplug plus one soft token made from the attention-weighted distribution of the history
    items' labels (the profile's tags or ratings), through its own MLP, so the user's labels reach the LLM
    undiluted by the item text. Label tasks whose profiles carry the answer field only."""
    Config = LabelsConfig
    pinned = {"mode": "attention", "use_instruction": True, "use_user": True, "label_channel": True}

    @classmethod
    def unsupported_reason(cls, spec) -> str | None:
        if not spec.labels or not spec.answer_field:
            return f"{spec.name}: no labels in the history items (pplug_labels reads the profile's answer field)"
        return None


@register_method("pplug_mean")
class PPlugMean(PersonaPlugMethod):
    Config = MeanConfig
    pinned = {"mode": "mean", "use_instruction": True, "use_user": True}


@dataclass
class NoInstConfig(PlugConfig):
    use_instruction: bool = False


@register_method("pplug_noinst")
class PPlugNoInst(PersonaPlugMethod):
    Config = NoInstConfig
    pinned = {"use_instruction": False, "use_user": True}


@dataclass
class TaskTunedConfig(PlugConfig):
    use_user: bool = False


@register_method("tasktuned")
class TaskTuned(PersonaPlugMethod):
    Config = TaskTunedConfig
    pinned = {"use_instruction": True, "use_user": False}


@dataclass
class RagPlugConfig(PlugConfig):
    retriever: str = "bm25"               # a benchmark.retrieval.rankers ranker: bm25 | dense | recency | random
    rag_k: int = 1                        # retrieved profile items in the prompt (paper Table 3: BM25, k = 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rag_k < 1:
            raise ValueError(f"method.rag_k must be >= 1, got {self.rag_k}")


@register_method("pplug_rag")
class PPlugRAG(PersonaPlugMethod):
    """Persona-Plug with LaMP's retrieval-augmented prompt (benchmark/models/prompts.py) in training and prediction."""
    Config = RagPlugConfig
    cfg: RagPlugConfig
    pinned = {"mode": "attention", "use_instruction": True, "use_user": True}
    caches = ("embeddings", "bm25")

    def ranker(self):
        from benchmark.retrieval.rankers import make_ranker
        return make_ranker(self.cfg.retriever, self.ctx)

    def prompt_set(self, examples: Sequence[Example]) -> tuple[list[str], dict[str, list]]:
        """LaMP RAG prompts; per example, how many retrieved items were cut to keep the task input whole."""
        from benchmark.models.prompts import rag_prompt_set
        built = rag_prompt_set(self.ctx, examples, self.ranker(), self.cfg.rag_k)
        return built.prompts, {"rag_items_cut": built.items_cut}

    def predict(self, examples: Sequence[Example]) -> Prediction:
        out = super().predict(examples)
        self.n_rag_items_cut = sum(out.extras.get("rag_items_cut", []))     # evaluated prompts only
        return out

    def cost(self) -> dict[str, Any]:
        return {**super().cost(), "n_rag_items_cut": int(getattr(self, "n_rag_items_cut", 0))}

    def key_extra(self) -> dict[str, Any]:
        return {"ranker": self.ranker().ident}
