"""No-behaviour-change check: a seeded smoke grid over every registered method and every task on the synthetic
pack, with tiny random models, and a sha256 per prediction file.

    .venv/bin/python scripts/check_identical.py --work /tmp/ident --out /tmp/ident/new.json
    .venv/bin/python scripts/check_identical.py --compare /tmp/ident/old.json /tmp/ident/new.json

Run it at two commits with the same ``--models`` folder (the tiny backbone and embedder are built once, seeded,
and then reused, so both commits read byte-identical weights) and compare the two JSON files: every run's
``predictions.json`` and ``samples.jsonl`` (raw outputs, prompt hashes, per-example scores) must hash the same.
Each invocation uses a fresh cache folder, so nothing trained by one commit is reused by the other. The grid runs
in-process through the runner (``benchmark.runs.runner``, or ``benchmark.runner`` at commits before the
sub-package move) with profile ``test``.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SPECIALS = ["<pad>", "</s>", "<unk>", "<s>", "[CLS]", "[SEP]", "[MASK]"]
CHAT = ("{% for m in messages %}<s> {{ m['content'] }} </s>{% endfor %}"
        "{% if add_generation_prompt %} answer :{% endif %}")


def _corpus() -> list[str]:
    """Words for the tiny tokenizer: every task and method YAML as text, and the synthetic generator's words."""
    texts = [p.read_text() for p in sorted((REPO / "configs").rglob("*.yaml"))]
    src = (REPO / "benchmark" / "data" / "synthetic.py")
    src = src if src.exists() else REPO / "benchmark" / "synthetic.py"
    texts.append(src.read_text())
    texts.append("the a of and is for to in movie user likes paper title review score tweet article answer "
                 "0 1 2 3 4 5 6 7 8 9 [1] [2] , . : \" ' ( ) [ ] -")
    return texts


def build_models(root: Path) -> Path:
    """A tiny Llama backbone and a tiny BERT embedder (seeded), unless ``root`` already holds them."""
    if (root / "done").exists():
        return root
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(_corpus(), trainers.WordLevelTrainer(special_tokens=SPECIALS, vocab_size=4000))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   bos_token="<s>", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    fast.chat_template = CHAT
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, eos_token_id=1, bos_token_id=3,
                      max_position_embeddings=512, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(root / "causal")
    fast.save_pretrained(root / "causal")
    torch.manual_seed(0)
    fast.chat_template = None
    bcfg = BertConfig(vocab_size=len(fast), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=512, pad_token_id=0)
    BertModel(bcfg).save_pretrained(root / "embedder")
    fast.save_pretrained(root / "embedder")
    (root / "done").write_text("ok\n")
    return root


def runner_main():
    for name in ("benchmark.runs.runner", "benchmark.runner"):
        try:
            return importlib.import_module(name).main
        except ModuleNotFoundError:
            continue
    raise SystemExit("no runner module found")


def sha_file(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def run_grid(work: Path, models: Path, tasks: str, methods: str, extra: list[str]) -> dict:
    results, cache = work / "results", work / "cache"
    for d in (results, cache):
        shutil.rmtree(d, ignore_errors=True)
    code = runner_main()(["--tasks", tasks, "--methods", methods, "--profile", "test",
                          f"backbone.id={models / 'causal'}", f"embedder.id={models / 'embedder'}",
                          "backbone.threads=0", f"run.cache_dir={cache}", f"run.results_dir={results}",
                          "data.source=synthetic", *extra])
    out: dict = {"exit_code": code, "runs": {}}
    with open(results / "runs.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            key = f"{row['task']} {row['method']} {row.get('variant', '')}".strip()
            if row["status"] != "finished":
                out["runs"][key] = {"status": row["status"], "reason": row.get("reason")}
                continue
            folder = results / "runs" / row["run_id"]
            out["runs"][key] = {"status": "finished", "metrics": {k: v["value"] for k, v in row["metrics"].items()},
                                **{name: sha_file(folder / name) for name in
                                   ("predictions.json", "samples.jsonl", "golds.json", "summaries.jsonl")}}
    return out


def compare(a_path: Path, b_path: Path) -> int:
    a, b = json.loads(a_path.read_text()), json.loads(b_path.read_text())
    keys = sorted(set(a["runs"]) | set(b["runs"]))
    same, differ = 0, []
    for k in keys:
        ra, rb = a["runs"].get(k), b["runs"].get(k)
        if ra == rb:
            same += 1
        else:
            fields = sorted(f for f in set(ra or {}) | set(rb or {}) if (ra or {}).get(f) != (rb or {}).get(f))
            differ.append(f"{k}: differs in {', '.join(fields)}")
    print(f"{same} of {len(keys)} runs byte-identical (predictions.json, samples.jsonl, golds.json, summaries.jsonl)")
    for line in differ:
        print("  " + line)
    return 0 if not differ else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/check_identical"))
    ap.add_argument("--models", type=Path, default=None, help="tiny model folder (built once; default WORK/models)")
    ap.add_argument("--tasks", default="all")
    ap.add_argument("--methods", default="all")
    ap.add_argument("--out", type=Path, default=None, help="JSON of hashes (default WORK/hashes.json)")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)
    if a.compare:
        return compare(*a.compare)
    a.work.mkdir(parents=True, exist_ok=True)
    models = build_models(a.models or a.work / "models")
    report = run_grid(a.work / "grid", models, a.tasks, a.methods, a.overrides)
    out = a.out or a.work / "hashes.json"
    out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(f"{len(report['runs'])} runs hashed -> {out} (grid exit code {report['exit_code']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
