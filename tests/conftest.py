"""Shared fixtures: tiny randomly initialised models saved as ordinary HF folders, so tests exercise the real
loading layer (benchmark.models.loading) with no download: a decoder-only (Llama) and a seq2seq (T5) backbone that
share one word-level tokenizer, and a BERT sentence embedder. Built once per session in milliseconds."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SPECIALS = ["<pad>", "</s>", "<unk>", "<s>", "[CLS]", "[SEP]", "[MASK]"]
CHAT = ("{% for m in messages %}<s> {{ m['content'] }} </s>{% endfor %}"
        "{% if add_generation_prompt %} answer :{% endif %}")


def _corpus() -> list[str]:
    from benchmark.data.tasks import load_task, task_names
    from benchmark.runs.config import method_nodes
    summary_prompts = method_nodes("summary")[1]          # the summariser's per-task prompts (summary.yaml)
    texts = []
    for name in task_names():
        spec = load_task(name)
        texts += [spec.input_template, spec.rag.item, spec.rag.prompt, summary_prompts[name].summary_prompt,
                  *spec.labels]
    from benchmark.data import synthetic
    texts += [" ".join(synthetic.TOPIC_WORDS), " ".join(synthetic.SIGNATURE_WORDS), " ".join(synthetic.FILLERS)]
    texts.append("the a of and is for to in movie user likes paper title review score tweet article answer "
                 "0 1 2 3 4 5 6 7 8 9 [1] [2] , . : \" ' ( ) [ ] -")
    return texts


def _tokenizer(chat: bool):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(_corpus(), trainers.WordLevelTrainer(special_tokens=SPECIALS))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   bos_token="<s>", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    if chat:
        fast.chat_template = CHAT
    return fast


@pytest.fixture(scope="session")
def tiny_causal_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = _tokenizer(chat=True)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, eos_token_id=1, bos_token_id=3,
                      max_position_embeddings=512, tie_word_embeddings=True)
    out = tmp_path_factory.mktemp("tiny_causal")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_seq2seq_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    tok = _tokenizer(chat=False)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16, pad_token_id=0,
                   eos_token_id=1, decoder_start_token_id=0)
    out = tmp_path_factory.mktemp("tiny_seq2seq")
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_embedder_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    tok = _tokenizer(chat=False)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=512, pad_token_id=0)
    out = tmp_path_factory.mktemp("tiny_embedder")
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(params=["causal", "seq2seq"])
def tiny_backbone_dir(request, tiny_causal_dir, tiny_seq2seq_dir) -> Path:
    """Parametrised over both backbone kinds: a test using it runs twice."""
    return tiny_causal_dir if request.param == "causal" else tiny_seq2seq_dir


@pytest.fixture
def tiny_overrides(tmp_path, tiny_embedder_dir):
    """CLI-style overrides that point a run at tiny models, the synthetic pack and temp dirs."""
    def make(backbone_dir: Path, *extra: str) -> list[str]:
        return [f"backbone.id={backbone_dir}", f"embedder.id={tiny_embedder_dir}", "backbone.threads=0",
                f"run.cache_dir={tmp_path / 'cache'}", f"run.results_dir={tmp_path / 'results'}",
                "data.source=synthetic", *extra]
    return make
