"""OPPU, One PEFT Per User (Tan et al. 2024, arXiv 2402.04401; code TamSiuhin/OPPU): a shared task LoRA, then a
private LoRA per user trained only on that user's own history.

Stage 1 (``fit``): one LoRA trained on the (LaMP input -> gold) pairs of the training questions, then merged
(``merge_and_unload``) into a *deep copy* of the backbone: the shared backbone object that other methods in the
process use is never touched. ``method.task.epochs=0`` skips stage 1 (per-user LoRA on the plain backbone).

Stage 2 (``predict``): for each evaluated user, a fresh LoRA trained on pairs built from that user's history
items with the task's ``user_pair`` template (``tasks:`` in configs/methods/oppu.yaml; LaMP-7's derived
``{head}``/``{tail}``: the first quarter of the item's words / the rest, as LaMP's per-user PEFT code does). Each
user's pairs are built from that user's items alone: the released OPPU code accumulated every earlier user's data
into later users' training sets (a defect); ``tests/test_oppu.py`` checks the isolation.

Design choices (all recorded in ``cost()``):

* **History = items every evaluated question of the user may see**: the intersection (by item id) of the
  profiles of the user's evaluated questions, latest ``user.max_pairs`` kept. With several evaluated questions
  per user (LaMP-6 mini: 10 dev questions each), the latest question's profile holds the earlier questions'
  gold outputs; training on it would leak them. (``LampDataModule.user_history`` returns the shortest evaluated
  profile, the same set when profiles are time-ordered prefixes; the intersection here also holds for any order.)
* **One PEFT model, weights swapped per user**: the stage-1 model is wrapped once in a LoRA whose initial
  weights (seeded A, zero B) are kept; each user starts from exactly that state, trains, is saved, and its
  weights stay loaded while that user's questions are answered. No per-user model copy, and an adapter does
  not depend on which users were trained before it (resume gives the same adapters). Prediction goes through a
  :class:`~benchmark.models.lm.LanguageModel` over the LoRA-injected model with the shared one's tokenizer, chat
  template, input budget and decoding, so the run's answer mode applies exactly as for every other method.
* **Which users**: every evaluated user by default; ``max_users`` keeps the most active (longest history,
  ties by user key), as OPPU's "100 most active users". Users without an adapter (over the cap, or no usable
  history item) are answered by the stage-1 model only under ``fallback: task_adapter``; ``fallback: error``
  refuses. Either way they are counted in ``cost()``.
* **Resume**: each adapter is stored as it finishes under a content hash of (backbone identity, stage-1
  adapter key, the user's pairs, stage and optimiser config, seed); a rerun loads finished users and trains
  the rest, so an interruption loses at most the user in progress.

Deviations from the released code: deterministic decoding from the run's config (OPPU samples at T=0.1, top-k
10, top-p 0.9); LaMP's prompts (the run's own), not OPPU's ``prompt.json``; stage-1 LoRA on q/v by default
(OPPU also adapts k: set ``method.task.target_modules``); CPU-sized epochs, caps and a higher learning rate
(5e-4 over a few steps; OPPU: 1e-4 over 3 + 2 full epochs), listed in configs/methods/oppu.yaml. ``oppu_rag``
(OPPU+RAG) retrieves for stage 1, for the per-user pairs and at inference (see :class:`OPPURag`).
"""
from __future__ import annotations

import copy
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Sequence

from benchmark.contract.config import MethodConfig, as_dict, check_choice
from benchmark.contract.method import Method
from benchmark.contract.prediction import Prediction
from baselines.lora_trainer import FORMAT as TRAINER_FORMAT
from baselines.lora_trainer import (LoraStage, TrainSettings, adapter_state, attach_lora, is_saved, load_state,
                                    read_adapter, save_adapter, train_lora, trainable_params)
from benchmark.contract.registry import register_method
from benchmark.data.example import Example, item_id, leak_free_history
from benchmark.cache.store import content_key
from benchmark.data.tasks import TaskSpec, render
from benchmark.models.prompts import RagPrompts, rag_prompt_set

FALLBACKS = ("task_adapter", "error")
SELECTION_RULE = "most active first: longest leak-free history, ties by user key"
HISTORY_RULE = "items in every evaluated question's profile of the user (by item id), the latest user.max_pairs"


@dataclass
class PairTemplate:
    """A user's training pair from one history item: ``input`` and ``output`` rendered from the item's fields
    (plus the derived ``{head}``/``{tail}``, see :func:`derived_fields`)."""
    input: str = "???"
    output: str = "???"


@dataclass
class OPPUConfig(MethodConfig):
    task: LoraStage = field(default_factory=lambda: LoraStage(epochs=1, max_pairs=64, batch_size=4, accumulate=2))
    user: LoraStage = field(default_factory=lambda: LoraStage(epochs=2, max_pairs=8, batch_size=4))
    train: TrainSettings = field(default_factory=TrainSettings)
    max_users: Optional[int] = None   # None = every evaluated user
    fallback: str = "task_adapter"    # task_adapter | error: how users without an adapter are answered
    user_pair: PairTemplate = field(default_factory=PairTemplate)   # per task (tasks: block of oppu.yaml)

    def __post_init__(self) -> None:
        check_choice(self.fallback, FALLBACKS, "fallback")
        if self.max_users is not None and self.max_users < 0:
            raise ValueError(f"method.max_users must be >= 0 or null, got {self.max_users}")


@dataclass
class OPPURagConfig(OPPUConfig):
    k: int = 1                        # retrieved history items in the prompt (OPPU+RAG uses k = 1)
    retriever: str = "bm25"           # a ranker of benchmark/retrieval/rankers.py


# ---------------------------------------------------------------------------------------------- user data
def derived_fields(spec: TaskSpec, item: dict[str, Any]) -> dict[str, str]:
    """``head``/``tail``: the first quarter (at least one word) of the item's document words / the rest."""
    words = spec.document(item).split()
    cut = max(1, len(words) // 4)
    return {"head": " ".join(words[:cut]), "tail": " ".join(words[cut:])}


def user_pairs(spec: TaskSpec, template: PairTemplate, items: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(input, output) training pairs from one user's history items; items with an empty output are dropped."""
    pairs = []
    for item in items:
        fields = {**derived_fields(spec, item), **item}
        target = render(template.output, fields).strip()
        if target:
            pairs.append((render(template.input, fields), target))
    return pairs


def select_users(history_sizes: dict[str, int], max_users: int | None) -> list[str]:
    """Users that get an adapter, in training order: most active first, ties by user key."""
    ranked = sorted(history_sizes, key=lambda u: (-history_sizes[u], u))
    return ranked if max_users is None else ranked[:max(max_users, 0)]


# ---------------------------------------------------------------------------------------------- method
@register_method("oppu")
class OPPU(Method):
    Config: ClassVar[type] = OPPUConfig
    grid_order: ClassVar[int] = 80     # trained methods run after the prompting ones
    shard_by: ClassVar[str] = "user"   # a rank trains the adapters of the users it owns
    cfg: OPPUConfig

    def __init__(self, ctx):
        super().__init__(ctx)
        self.seed = ctx.seed
        self.peft = None                                  # stage-1 model wrapped in the per-user LoRA
        self.stage1: dict[str, Any] = {"status": "not run"}
        self.users: dict[str, dict[str, Any]] = {}        # user key -> adapter record (status, key, meta)
        self.without_adapter: dict[str, str] = {}         # user key -> reason
        self.n_fallback_examples = 0
        self.n_rag_items_cut = 0                          # oppu_rag: retrieved items cut from evaluated prompts

    # ------------------------------------------------------------------ hooks
    def prompts(self, examples: Sequence[Example]) -> RagPrompts:
        """The backbone input per question (the official LaMP input; ``oppu_rag`` adds retrieved items) and the
        retrieved items cut from each to keep its input whole."""
        return RagPrompts([ex.input for ex in examples], [0] * len(examples))

    def user_training_pairs(self, user: str, history: Sequence[dict[str, Any]], limit: int) -> list[tuple[str, str]]:
        """The user's LoRA training pairs from the latest ``limit`` items of the leak-free ``history``, in the
        prompt form of inference (plain LaMP input here; ``oppu_rag`` adds retrieved earlier items)."""
        return user_pairs(self.ctx.spec, self.cfg.user_pair, history[-limit:] if limit > 0 else [])

    # ------------------------------------------------------------------ shared pieces
    def _base_ident(self) -> dict[str, Any]:
        lm = self.ctx.lm
        return {**lm.ident, "max_input_tokens": lm.max_input_tokens, "chat": lm.use_chat}

    def _view(self, model):
        """A LanguageModel over ``model`` with the shared backbone's tokenizer, template, budget and decoding."""
        from benchmark.models.lm import LanguageModel
        base = self.ctx.lm
        return LanguageModel(model, base.tokenizer, kind=base.kind, ident={**base.ident, "adapted_by": self.name},
                             device=base.device, chat_template=base.use_chat, max_input_tokens=base.max_input_tokens,
                             batch_size=base.batch_size, generate_batch_size=base.generate_batch_size,
                             decoding=dict(base.decoding))

    def _train_or_load(self, peft, namespace: str, key: str, pairs, stage, *, seed: int, bar: bool,
                       log_name: str = "train") -> dict:
        """Adapter ``key`` into ``peft``: loaded when stored, else trained on ``pairs`` and stored."""
        folder = self.ctx.store.dir(namespace, key)
        if is_saved(folder):
            state, meta = read_adapter(folder)
            load_state(peft, state)
            self.ctx.store.hits[namespace] += 1
            return {"status": "resumed", **meta}
        self.ctx.store.misses[namespace] += 1
        stats = train_lora(self._view(peft.get_base_model()), pairs, stage, self.cfg.train, seed=seed,
                           logger=self.ctx.train_logger(log_name),
                           callbacks=[self.ctx.train_bar(f"train {self.name} {log_name} LoRA")] if bar else [])
        meta = {"train_seconds": round(stats.seconds, 3), "train_cpu_seconds": round(stats.cpu_seconds, 3),
                "n_pairs": stats.n_pairs, "steps": stats.steps,
                "first_loss": stats.losses[0], "last_loss": stats.losses[-1],
                "trainable_params": stats.trainable_params, "key": key}
        meta["adapter_bytes"] = self.ctx.store.save_dir(namespace, key, lambda tmp: save_adapter(peft, tmp, meta))
        return {"status": "trained", **meta}

    # ------------------------------------------------------------------ stage 1
    def fit(self, train: Sequence[Example]) -> None:
        labelled = [ex for ex in train if ex.gold is not None]
        if len(labelled) > self.cfg.task.max_pairs:
            keep = sorted(random.Random(f"{self.seed}:oppu-task").sample(range(len(labelled)),
                                                                         self.cfg.task.max_pairs))
            labelled = [labelled[i] for i in keep]
        pairs = list(zip(self.prompts(labelled).prompts, [str(ex.gold) for ex in labelled]))
        model = copy.deepcopy(self.ctx.lm.model)       # never mutate the shared backbone
        if self.cfg.task.epochs <= 0 or not pairs:
            reason = "method.task.epochs=0" if pairs else "no labelled training question"
            self.stage1 = {"status": f"skipped ({reason})", "key": "none"}
        else:
            key = content_key("oppu-task", TRAINER_FORMAT, self._base_ident(), as_dict(self.cfg.task),
                              as_dict(self.cfg.train), pairs, self.seed)
            peft = attach_lora(model, self.ctx.lm.kind, self.cfg.task, self.seed)
            self.stage1 = self._train_or_load(peft, "oppu_task_adapters", key, pairs, self.cfg.task,
                                              seed=self.seed, bar=True, log_name="task")
            model = peft.merge_and_unload()
        self.peft = attach_lora(model, self.ctx.lm.kind, self.cfg.user, self.seed + 1)
        self._fresh = adapter_state(self.peft)          # seeded A, zero B: equals the stage-1 model
        self.lm = self._view(self.peft.get_base_model())
        from benchmark.contract.context import TaskLM
        self.task_lm = TaskLM(self.lm, self.ctx.spec, self.ctx.lm.decoding)

    # ------------------------------------------------------------------ stage 2 + answers
    def predict(self, examples: Sequence[Example]) -> Prediction:
        if self.peft is None:
            raise RuntimeError(f"baselines/oppu.py: {self.name}.predict called before fit (stage 1 builds the model)")
        by_user: dict[str, list[int]] = {}
        for i, ex in enumerate(examples):
            by_user.setdefault(ex.user_key, []).append(i)
        limit = int(self.cfg.user.max_pairs)
        histories = {u: leak_free_history([examples[i] for i in idx]) for u, idx in by_user.items()}
        pairs = {u: self.user_training_pairs(u, h, limit) for u, h in histories.items()}
        chosen = select_users({u: len(h) for u, h in histories.items()}, self.cfg.max_users)
        self.without_adapter = {u: "over method.max_users" for u in by_user if u not in chosen}
        self.without_adapter.update({u: "no usable history item" for u in chosen if not pairs[u]})
        chosen = [u for u in chosen if pairs[u]]
        if self.without_adapter and self.cfg.fallback == "error":
            raise RuntimeError(f"baselines/oppu.py: {len(self.without_adapter)} evaluated user(s) have no adapter "
                               f"(e.g. {next(iter(self.without_adapter.items()))}) and method.fallback=error")

        built = self.prompts(examples)
        prompts, self.n_rag_items_cut = built.prompts, sum(built.items_cut)
        raw, final = [""] * len(examples), [""] * len(examples)
        user_ns = "oppu_user_adapters"
        bar = self.ctx.progress(chosen, total=len(chosen), desc=f"{self.name}: per-user LoRA")
        for user in bar:
            key = content_key("oppu-user", TRAINER_FORMAT, self._base_ident(), self.stage1["key"], as_dict(self.cfg.user),
                              as_dict(self.cfg.train), pairs[user], self.seed)
            load_state(self.peft, self._fresh)
            self.users[user] = self._train_or_load(self.peft, user_ns, key, pairs[user], self.cfg.user,
                                                   seed=int(key[:8], 16), bar=False, log_name=f"user-{user}")
            self._answer(by_user[user], prompts, raw, final)
        rest = [i for u in self.without_adapter for i in by_user[u]]
        if rest:                                          # fallback: task_adapter (error raised above)
            with self.peft.disable_adapter():
                self._answer(rest, prompts, raw, final)
            self.n_fallback_examples = len(rest)
        return Prediction(final, raw=raw, prompts=prompts, extras={"rag_items_cut": built.items_cut})

    def _answer(self, idx: list[int], prompts: list[str], raw: list[str], final: list[str]) -> None:
        r, f = self.task_lm.answer([prompts[i] for i in idx])
        for i, a, b in zip(idx, r, f):
            raw[i], final[i] = a, b

    def diagnostics(self) -> dict[str, Any]:
        """``oppu_users.jsonl``: one line per evaluated user (adapter key, status, time, size)."""
        rows = [{"user": u, **rec} for u, rec in self.users.items()]
        rows += [{"user": u, "status": "no adapter", "reason": why} for u, why in self.without_adapter.items()]
        return {"oppu_users.jsonl": rows}

    # ------------------------------------------------------------------ cost
    def cost(self) -> dict[str, Any]:
        """Per-user training time (wall and CPU, as recorded when each adapter was trained, so a resumed run
        reports the same), adapter size, trainable parameters, the stage-1 figures and who got no adapter."""
        recs = list(self.users.values())
        secs = [float(r["train_seconds"]) for r in recs]
        sizes = [int(r["adapter_bytes"]) for r in recs]
        per_user = trainable_params(self.peft) if self.peft is not None else 0   # the user LoRA's only
        s1 = self.stage1
        return {
            "trainable_params": per_user, "stored_bytes_per_user": round(_mean(sizes)),
            "trainable_params_per_user": per_user,
            "n_users_with_adapter": len(recs),
            "n_users_trained": sum(r["status"] == "trained" for r in recs),
            "n_users_resumed": sum(r["status"] == "resumed" for r in recs),
            "n_users_without_adapter": len(self.without_adapter),
            "users_without_adapter_reasons": dict(sorted(Counter(self.without_adapter.values()).items())),
            "n_examples_fallback": self.n_fallback_examples, "fallback": self.cfg.fallback,
            "user_selection": SELECTION_RULE, "max_users": self.cfg.max_users, "user_history": HISTORY_RULE,
            "user_pairs_mean": _mean([r["n_pairs"] for r in recs]),
            "user_train_s_mean": _mean(secs), "user_train_s_total": round(sum(secs), 3),
            "user_train_cpu_s_mean": _mean([float(r.get("train_cpu_seconds", 0.0)) for r in recs]),
            "adapter_bytes_per_user_mean": _mean(sizes), "adapter_bytes_total": sum(sizes),
            "stage1_status": s1.get("status"), "stage1_pairs": s1.get("n_pairs", 0),
            "stage1_train_s": s1.get("train_seconds", 0.0), "stage1_train_cpu_s": s1.get("train_cpu_seconds", 0.0),
            "stage1_trainable_params": s1.get("trainable_params", 0),
            "stage1_adapter_bytes": s1.get("adapter_bytes", 0),
            "n_truncated_prompts_adapted": self.lm.n_truncated if self.peft is not None else 0,
            "n_rag_items_cut": self.n_rag_items_cut,
        }


def _mean(xs: Sequence[float]) -> float:
    return round(statistics.fmean(xs), 3) if xs else 0.0


@register_method("oppu_rag")
class OPPURag(OPPU):
    """OPPU+RAG (k > 0): LaMP's RAG prompt (benchmark/models/prompts.py) with the ``k`` best items of the question's
    own profile by ``retriever`` (BM25 by default, as OPPU), in stage-1 training, in the per-user pairs and at
    inference, so each LoRA trains on the prompt form it answers in. A user pair built from history item ``i``
    retrieves from that user's items before ``i`` only (OPPU's ``profile[:idx]``), all inside the leak-free
    history; the first item has none and keeps the plain input."""

    Config: ClassVar[type] = OPPURagConfig
    caches: ClassVar[tuple[str, ...]] = ("bm25",)
    cfg: OPPURagConfig

    def prompts(self, examples: Sequence[Example]) -> RagPrompts:
        return rag_prompt_set(self.ctx, examples, str(self.cfg.retriever), int(self.cfg.k))

    def user_training_pairs(self, user: str, history: Sequence[dict[str, Any]], limit: int) -> list[tuple[str, str]]:
        spec, history = self.ctx.spec, list(history)
        start = max(len(history) - limit, 0) if limit > 0 else len(history)
        pseudo, targets = [], []
        for i in range(start, len(history)):
            pair = user_pairs(spec, self.cfg.user_pair, [history[i]])
            if pair:
                pseudo.append(Example(id=f"{user}/pair/{item_id(history[i])}", user_id=user, input=pair[0][0],
                                      profile=tuple(history[:i]), gold=pair[0][1]))
                targets.append(pair[0][1])
        with_items = [j for j, ex in enumerate(pseudo) if ex.profile]
        inputs = [ex.input for ex in pseudo]
        if with_items:
            for j, prompt in zip(with_items, self.prompts([pseudo[j] for j in with_items]).prompts):
                inputs[j] = prompt
        return list(zip(inputs, targets))
