"""How zero-shot choice answers spread over a task's labels under each choice normalisation (sum, token, byte).

    python scripts/choice_distribution.py --task LaMP_2 --data mini [--limit N] [key=value ...]

One packed scoring pass per question gives log P(label + EOS) for every label; the per-token and per-byte
scores are that sum divided by the label's token count (+ EOS) or UTF-8 bytes, exactly as
``LanguageModel.choice_scores(norm=...)`` forms them. Prints, per normalisation, the answer count per label
and the accuracy against the golds, on the seeded dev sample the profile selects (``data.limit``).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's packages, not an installed copy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="LaMP_2")
    ap.add_argument("--data", default="mini")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--limit", default="null")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    from benchmark.contract.context import Context
    from benchmark.models.answers import choice_divisors
    from benchmark.runs.config import compose
    from benchmark.runs.experiment import prepare_data

    cfg = compose(a.task, "zeroshot", [f"data.source={a.data}", f"data.limit={a.limit}", *a.overrides],
                  profile=a.profile)
    dm = prepare_data(cfg)
    ctx = Context(cfg, data=dm)
    lm, labels = ctx.lm, ctx.spec.labels
    evals = dm.eval_examples
    summed = lm.choice_scores([ex.input for ex in evals], labels, norm="sum")          # [N, C]
    n_tokens = [len(lm.target_ids(c)) for c in labels]
    out = {"task": a.task, "n": len(evals), "ids_sha256": dm.provenance["selection"]["eval"]["ids_sha256"],
           "golds": dict(Counter(ex.gold for ex in evals).most_common())}
    for norm in ("sum", "token", "byte"):
        scores = summed / torch.tensor(choice_divisors(norm, labels, n_tokens))
        picks = [labels[j] for j in scores.argmax(-1).tolist()]
        out[norm] = {"answers": dict(Counter(picks).most_common()),
                     "accuracy": round(sum(p == ex.gold for p, ex in zip(picks, evals)) / max(len(evals), 1), 4)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
