"""Hostile and good input for the end-to-end fuzz test, each with the one output it must leave.

Pure data, no Kafka: ``test_fuzz_pipeline.py`` sends these through a real broker and a real
worker and checks the outputs against :class:`Expect`. Records are drawn with hypothesis
strategies, derandomized and with a fixed number of examples per kind, so every run sends
the same records (:func:`draw`). Each kind's expected output is known by construction:

- objects of ``Article`` (kNN over three well-separated 16-d clusters, ``samples``) get the
  label of the cluster they were drawn around, one result per applicable classifier
  (``article-like`` applies when ``body`` matches its ``Like`` pattern: :func:`like_matches`
  is the oracle); bad objects one dead letter with the reason their defect implies;
- ``Fresh`` has a kNN classifier and never any example: objects of mixed dimensions get a
  result with no label, never a crash;
- media whole events get the class their segments were drawn from; chunked items leave one
  result at the chunk that completes them, a bad chunk its own dead letter, a waiting chunk
  nothing;
- valid training records leave nothing (they count in ``training_records_applied``), bad
  ones a dead letter.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import orjson
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from app.devtools import samples
from app.devtools.scenarios import bad_training
from app.schemas.vectors import encode_vector

SEED = 20240917
ALPHABET = string.ascii_lowercase
LIKE_PATTERN = "*" + "*".join(ALPHABET) + "*"  # *a*b*...*z*: a backtracking regex is exponential on a miss
MB = 1024 * 1024
HUGE = 13 * MB  # over the dead-letter limit: its dead letter must carry a prefix, size and sha256

MEDIA_DIM = 8
GENRES = ("Sports", "Cooking", "Dance")
ARTICLE_CLFS = ("article-topic", "article-like")


@dataclass
class Expect:
    """The one output of an input: ``results`` (result_id -> labels, None = any label), a dead
    letter with one of ``reasons``, or nothing (``none``: a waiting chunk, a valid training record)."""

    results: dict[str, dict | None] = field(default_factory=dict)
    reasons: frozenset[str] = frozenset()
    none: bool = False  # with ``reasons``: either (one of a ``group``, of which exactly one is accepted)
    check: Callable[[dict], list[str]] | None = None  # extra checks on the dead letter
    group: str | None = None

    @classmethod
    def dead(cls, *reasons: str, check: Callable[[dict], list[str]] | None = None) -> "Expect":
        return cls(reasons=frozenset(reasons), check=check)


@dataclass
class Case:
    topic: str
    key: bytes | None
    value: bytes | None
    expect: Expect
    kind: str


def _b(v: Any) -> bytes | None:
    if v is None or isinstance(v, bytes):
        return v
    try:
        return orjson.dumps(v)
    except TypeError:  # orjson refuses nesting deeper than 254: the deep filters
        return json.dumps(v).encode()


# -- drawing with hypothesis, deterministically ------------------------------------------------
def draw(strategy: st.SearchStrategy, n: int) -> list:
    """Up to ``n`` examples of ``strategy``: the same ones every run (derandomized, no database)."""
    out: list = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much, HealthCheck.large_base_example])
    @given(strategy)
    def collect(x: Any) -> None:
        out.append(x)

    collect()
    return out


json_scalars = (st.none() | st.booleans() | st.integers(-2**53, 2**53)
                | st.floats(allow_nan=False, allow_infinity=False, width=32) | st.text(max_size=30))
prop_keys = st.text(min_size=1, max_size=10).filter(lambda k: k != "body")
properties = st.dictionaries(prop_keys, st.recursive(json_scalars, lambda x: st.lists(x, max_size=3), max_leaves=5),
                             max_size=4)
noise16 = st.lists(st.floats(-0.25, 0.25, width=32), min_size=samples.DIM, max_size=samples.DIM)


def like_matches(value: Any) -> bool:
    """Oracle for ``LIKE_PATTERN`` (``*a*b*...*z*``): the letters in order, case-insensitive.

    >>> like_matches("xAxbcdefghijklmnopqrstuvwxyZ"), like_matches("zyx"), like_matches(["no", ALPHABET])
    (True, False, True)
    """
    if isinstance(value, list):
        return any(like_matches(v) for v in value)
    if not isinstance(value, str):
        return False
    it = iter(value.lower())
    return all(c in it for c in ALPHABET)


def _article(oid: str, label: str | None, props: dict) -> Expect:
    return Expect(results={f"{oid}/{c}": ({"topic": label} if label else None) for c in ARTICLE_CLFS
                           if c == "article-topic" or like_matches(props.get("body"))})


# -- objects -------------------------------------------------------------------------------------
def objects() -> list[Case]:
    centres = samples.centres()
    cases: list[Case] = []
    n = iter(range(1_000_000))

    def obj(kind: str, value: Any, expect: Expect, key: str | None = None) -> None:
        if key is None:
            oid = value.get("id") if isinstance(value, dict) else None
            key = oid if isinstance(oid, str) and oid else f"fz-{kind}-{next(n)}"
        cases.append(Case("objects", key.encode(), _b(value), expect, kind))

    # good objects around the clusters: JSON list or base64 vectors, random properties
    for li, noise, props, b64 in draw(st.tuples(st.integers(0, 2), noise16, properties, st.booleans()), 60):
        oid, vec = f"fz-good-{next(n)}", centres[li] + np.asarray(noise, np.float32)
        obj("good", {"id": oid, "class": samples.CLASS, "properties": props,
                     "vector": encode_vector(vec) if b64 else vec.tolist()}, _article(oid, samples.LABELS[li], props))
    for oid, ev, label in samples.objects(120, run="fz-sample"):
        obj("good", ev, _article(oid, label, ev["properties"]), oid)

    # NaN and infinity (base64: JSON has no NaN) and the NaN literal (not JSON at all)
    for pos, bad in draw(st.tuples(st.integers(0, samples.DIM - 1), st.sampled_from([np.nan, np.inf, -np.inf])), 10):
        v = np.ones(samples.DIM, np.float32)
        v[pos] = bad
        obj("nan", {"id": f"fz-nan-{next(n)}", "class": samples.CLASS, "vector": encode_vector(v)},
            Expect.dead("vector_not_finite"))
    obj("nan", b'{"id": "fz-nan-literal", "class": "Article", "vector": [NaN, 1.0]}', Expect.dead("invalid_json"))

    for dim in draw(st.integers(1, 64).filter(lambda d: d != samples.DIM), 10):
        obj("wrong_dim", {"id": f"fz-dim-{next(n)}", "class": samples.CLASS, "vector": encode_vector(np.ones(dim))},
            Expect.dead("vector_dimension_mismatch"))

    wrong = st.sampled_from([("id", 7), ("id", []), ("id", {"a": 1}), ("id", ""), ("class", 5), ("class", []),
                             ("properties", [1, 2]), ("properties", "x"), ("vector", {"a": 1}), ("vector", True),
                             ("vector", [[1.0]]), ("vector", "not base64!"), ("vector", [1.0, "x"]), ("vector", [])])
    for field_name, bad in draw(wrong, 14):
        ev = {"id": f"fz-type-{next(n)}", "class": samples.CLASS, "vector": [1.0] * samples.DIM, field_name: bad}
        obj("wrong_type", ev, Expect.dead("schema_violation"))
    for missing in ("id", "class", "vector"):
        ev = {"id": f"fz-miss-{next(n)}", "class": samples.CLASS, "vector": [1.0] * samples.DIM}
        del ev[missing]
        obj("missing_field", ev, Expect.dead("schema_violation"))

    def not_an_object(b: bytes) -> bool:
        try:
            return not isinstance(orjson.loads(b), dict)
        except orjson.JSONDecodeError:
            return True
    garbage = st.binary(max_size=64) | st.text(max_size=40).map(str.encode) | st.sampled_from(
        [b"[1, 2]", b'"text"', b"null", b"{", b'{"id": "x",}', b"\xff\xfe{}"])
    for raw in draw(garbage.filter(not_an_object), 14):
        obj("bad_json", raw, Expect.dead("invalid_json"))
    obj("bad_json", None, Expect.dead("empty_value"))

    known = {samples.CLASS, "Fresh", "Comment", "Side"}
    for cls in draw(st.text(min_size=1, max_size=40).filter(lambda c: c not in known), 6):
        obj("unknown_class", {"id": f"fz-cls-{next(n)}", "class": cls, "vector": [1.0] * samples.DIM},
            Expect.dead("unknown_class"))

    # text: Article's space is 16-d vectors, the global vectorizer's 384-d; Comment is zero-shot on text
    for text in draw(st.text(min_size=1, max_size=200).filter(str.strip), 5):
        obj("text", {"id": f"fz-text-{next(n)}", "class": samples.CLASS, "text": text},
            Expect.dead("vector_dimension_mismatch"))
    for text, want in samples.COMMENTS:
        oid = f"fz-comment-{next(n)}"
        obj("text", {"id": oid, "class": "Comment", "text": text}, Expect(results={f"{oid}/comment-tone": {"tone": want}}))
    for text in draw(st.text(min_size=1, max_size=300), 8):
        oid = f"fz-comment-{next(n)}"
        obj("text", {"id": oid, "class": "Comment", "text": text}, Expect(results={f"{oid}/comment-tone": None}))
    obj("text", {"id": "fz-empty-text", "class": "Comment", "text": ""}, Expect.dead("schema_violation"))
    for cls, chars in (("Comment", 99_000), ("Comment", 100_001), (samples.CLASS, 400_000)):  # max_text_chars 100,000
        oid = f"fz-longtext-{next(n)}"
        obj("long_text", {"id": oid, "class": cls, "text": "spam and eggs " * (chars // 14) + "x" * (chars % 14)},
            Expect(results={f"{oid}/comment-tone": None}) if chars <= 100_000 else Expect.dead("text_too_long"))

    # a kNN classifier, no example yet, vectors of several dimensions in one batch
    for dim in draw(st.sampled_from([4, 8, 16, 24, 33]), 15) * 3:
        oid = f"fz-fresh-{next(n)}"
        obj("mixed_dims", {"id": oid, "class": "Fresh", "vector": encode_vector(np.full(dim, 0.5))},
            Expect(results={f"{oid}/fresh-topic": {"topic": None}}))

    # long Like values: 1 MB, matching (letters spread in order) or not (each a worst case for backtracking)
    spread = lambda filler, letters: (filler * (MB // len(letters))).join([""] + list(letters) + [""])[:MB + 64]  # noqa: E731
    bodies = [spread("x", ALPHABET), spread("A", ALPHABET.upper()), "a" * MB,
              spread("ab", ALPHABET.replace("q", "")), spread("y", ALPHABET[::-1])]
    for li, body in enumerate(bodies):
        oid, props = f"fz-like-{next(n)}", {"body": body}
        obj("long_like", {"id": oid, "class": samples.CLASS, "properties": props,
                          "vector": encode_vector(centres[li % 3])}, _article(oid, samples.LABELS[li % 3], props))

    # nesting: fine, too deep to store (refused), too deep for JSON
    levels = {30: None, 300: "schema_violation", 1100: "invalid_json"}  # 1100: past orjson's 1024
    for depth, as_list in draw(st.tuples(st.sampled_from(sorted(levels)), st.booleans()), 6):
        want = levels[depth]
        oid = f"fz-nest-{next(n)}"
        head = orjson.dumps({"id": oid, "class": samples.CLASS, "vector": encode_vector(centres[0])})[:-1]
        deep = ("[" * depth + "1" + "]" * depth) if as_list else ('{"x":' * depth + "1" + "}" * depth)
        obj("deep_properties", head + b',"properties":{"p":' + deep.encode() + b"}}",
            Expect.dead(want) if want else _article(oid, samples.LABELS[0], {}), oid)
    # keys: not UTF-8, and longer than a dead letter carries verbatim
    for key in (b"\xff\xfe-not-utf8", b"k" * 20_000):
        cases.append(Case("objects", key, b"{oops", Expect.dead("invalid_json", check=lambda d, k=key: _key(d, k)),
                          "odd_key"))

    big = orjson.dumps({"id": "fz-huge", "class": samples.CLASS, "vector": [1.0] * samples.DIM,
                        "properties": {"body": "h" * HUGE}})
    obj("huge", big, Expect.dead("payload_too_large", check=lambda d: _truncated(d, big)), "fz-huge")
    return cases


def _key(dead: dict, key: bytes) -> list[str]:
    import base64

    carried = base64.b64decode(dead.get("key_b64") or "")
    if len(key) > len(carried):
        ok = dead.get("key_truncated") is True and key.startswith(carried)
    else:
        ok = carried == key and not dead.get("key_truncated")
    return [] if ok else [f"key carried as {carried[:20]!r}... ({len(carried)} bytes, truncated "
                          f"{dead.get('key_truncated')}) for a {len(key)}-byte key"]


def _truncated(dead: dict, value: bytes) -> list[str]:
    import base64
    import hashlib

    prefix = base64.b64decode(dead.get("value_b64") or "")
    problems = []
    if dead.get("value_truncated") is not True:
        problems.append("value_truncated is not true")
    if dead.get("value_size") != len(value):
        problems.append(f"value_size {dead.get('value_size')} != {len(value)}")
    if dead.get("value_sha256") != hashlib.sha256(value).hexdigest():
        problems.append("value_sha256 is not the sha256 of the value")
    if not prefix or not value.startswith(prefix):
        problems.append("value_b64 is not a prefix of the value")
    return problems


# -- media ----------------------------------------------------------------------------------------
def prompt_vectors() -> np.ndarray:
    return np.random.default_rng(SEED).normal(size=(len(GENRES), MEDIA_DIM)).astype(np.float32)


def media_training() -> list[tuple[str, dict]]:
    pv = prompt_vectors()
    tax = {"record": "taxonomy", "name": "genres", "version": 1, "vectorizer": "none",
           "classes": [{"name": g, "prompts": [g], "prompt_vectors": [pv[i].tolist()]} for i, g in enumerate(GENRES)]}
    clf = {"record": "classifier", "name": "genre", "type": "media", "taxonomies": ["genres"],
           "media": {"index_id": "idx", "options": ["visual"]}}
    return [("taxonomy:genres", tax), ("classifier:genre", clf)]


def _segments(ci: int, n: int, start: int = 0) -> list[dict]:
    v = prompt_vectors()[ci]
    return [{"start": float(start + s), "end": float(start + s + 1), "option": "visual", "vector": encode_vector(v)}
            for s in range(n)]


def media() -> list[list[Case]]:
    """Sequences of media records: each chunked item's records in order, the rest one each."""
    seqs: list[list[Case]] = []
    n = iter(range(1_000_000))

    def whole(kind: str, key: str, value: Any, expect: Expect) -> None:
        seqs.append([Case("media", key.encode(), _b(value), expect, kind)])

    for ci, video, segs in draw(st.tuples(st.integers(0, 2), st.booleans(), st.integers(1, 6)), 16):
        mid = f"fz-media-{next(n)}"
        ev = {"media_id": mid, "index_id": "idx", "kind": "video" if video else "image",
              "segments": _segments(ci, segs if video else 1)}
        whole("media_good", mid, ev, Expect(results={f"{mid}/genre": {"class": GENRES[ci]}}))

    ok = {"index_id": "idx", "kind": "video", "segments": _segments(0, 2)}
    nan_seg = {**_segments(0, 1)[0], "vector": encode_vector([np.nan] * MEDIA_DIM)}
    bad = [({**ok, "segments": []}, "schema_violation"), ({**ok, "kind": "gif"}, "schema_violation"),
           ({**ok, "segments": [{"start": 3, "end": 1, "vector": [1.0] * MEDIA_DIM}]}, "schema_violation"),
           ({**ok, "segments": [nan_seg]}, "vector_not_finite"),
           ({**ok, "segments": [{**nan_seg, "vector": encode_vector(np.ones(MEDIA_DIM + 3))}]}, "vector_dimension_mismatch"),
           ({**ok, "classifier": "nope"}, "unknown_classifier"), ({**ok, "index_id": "other"}, "no_media_classifier"),
           (b"{not json", "invalid_json"), ({**ok, "media_id": 5}, "schema_violation"),
           ({**ok, "duration": 1e308}, "schema_violation"), ({**ok, "kind": "image", "width": 1e21}, "schema_violation"),
           ({**ok, "segments": [{**_segments(0, 1)[0], "start": 1e300, "end": 1e300}]}, "schema_violation"),
           ({**ok, "chunk": {"seq": 1e21}}, "schema_violation")]
    for i in draw(st.integers(0, len(bad) - 1), 20):
        value, reason = bad[i]
        mid = f"fz-mbad-{next(n)}"
        whole("media_bad", mid, {"media_id": mid, **value} if isinstance(value, dict) else value, Expect.dead(reason))

    # chunked items: chunks in any order, some preceded by a bad copy (dead-lettered on its own)
    plans = st.integers(1, 4).flatmap(lambda k: st.tuples(
        st.just(k), st.permutations(range(k)), st.lists(st.sampled_from(["nan", "key", "json", None]), min_size=k,
                                                        max_size=k), st.integers(0, 2)))
    for k, order, badness, ci in draw(plans, 8):
        mid, seq_cases, have = f"fz-chunked-{next(n)}", [], set()
        for seq in order:
            ev = {"media_id": mid, "index_id": "idx", "kind": "video", "duration": float(2 * k),
                  "chunk": {"seq": seq, "final": seq == k - 1, **({"total": k} if seq == k - 1 else {})},
                  "segments": _segments(ci, 2, 2 * seq)}
            if badness[seq] == "nan":
                seq_cases.append(Case("media", mid.encode(), _b({**ev, "segments": [nan_seg]}),
                                      Expect.dead("vector_not_finite"), "media_chunk_bad"))
            elif badness[seq] == "key":
                seq_cases.append(Case("media", f"{mid}-wrong".encode(), _b(ev), Expect.dead("media_key_mismatch"),
                                      "media_chunk_bad"))
            elif badness[seq] == "json":
                seq_cases.append(Case("media", mid.encode(), b'{"media_id": "' + mid.encode() + b'", "chunk": ',
                                      Expect.dead("invalid_json"), "media_chunk_bad"))
            have.add(seq)
            done = len(have) == k
            seq_cases.append(Case("media", mid.encode(), _b(ev), Expect(results={f"{mid}/genre": {"class": GENRES[ci]}})
                                  if done else Expect(none=True), "media_chunk"))
        seqs.append(seq_cases)
    # an item that can never complete: a chunk after the final one discards it
    mid = "fz-chunked-inconsistent"
    ev = {"media_id": mid, "index_id": "idx", "kind": "video", "segments": _segments(1, 1)}
    seqs.append([Case("media", mid.encode(), _b({**ev, "chunk": {"seq": 1, "final": True, "total": 2}}),
                      Expect(none=True), "media_chunk"),
                 Case("media", mid.encode(), _b({**ev, "chunk": {"seq": 3}}), Expect.dead("chunks_inconsistent"),
                      "media_chunk_bad")])
    return seqs


# -- training ---------------------------------------------------------------------------------------
def base_training() -> list[tuple[str, dict]]:
    """What the worker knows before the stream: every record valid."""
    like = samples.classifier(name="article-like", filters={"sourceWhere": {
        "path": ["body"], "operator": "Like", "valueText": LIKE_PATTERN}})
    fresh = {**samples.classifier(name="fresh-topic"), "class": "Fresh"}
    return [*samples.training_records(), ("classifier:article-like", like), ("classifier:fresh-topic", fresh),
            *samples.comment_records(), *media_training()]


def nested_not(depth: int) -> dict:
    where: dict = {"path": ["n"], "operator": "IsNull", "valueBoolean": True}
    for _ in range(depth):
        where = {"operator": "Not", "operands": [where]}
    return where


def training() -> list[list[Case]]:
    """Valid records that leave every object's expected output as it is, and bad ones; a delete
    follows its example (a delete of a key not in the table writes nothing, so counts would vary)."""
    centres = samples.centres()
    seqs: list[list[Case]] = []
    n = iter(range(1_000_000))

    def case(kind: str, key: str | None, value: Any, expect: Expect) -> Case:
        return Case("training", key.encode() if key is not None else None, _b(value), expect, kind)

    def rec(kind: str, key: str | None, value: Any, expect: Expect) -> None:
        seqs.append([case(kind, key, value, expect)])

    for li, noise in draw(st.tuples(st.integers(0, 2), noise16), 10):
        ex = f"fz-ex-{next(n)}"  # near its own cluster: Article objects keep their labels
        rec("valid", ex, samples.example(ex, centres[li] + np.asarray(noise, np.float32), samples.LABELS[li]),
            Expect(none=True))
    side = [f"fz-side-{next(n)}" for _ in range(5)]
    for i, ex in enumerate(side):
        rec("valid", ex, {**samples.example(ex, np.arange(8) + i, f"s{i % 2}"), "class": "Side"}, Expect(none=True))
    # a delete after its example (same key: same partition, so in order)
    seqs[-5].append(case("valid", side[0], {"record": "example", "op": "delete", "id": side[0]}, Expect(none=True)))
    seqs[-4].append(case("valid", side[1], None, Expect(none=True)))  # tombstone
    side_clf = {**samples.classifier(name="side-topic", filters={"sourceWhere": nested_not(20)}), "class": "Side"}
    rec("valid", "classifier:side-topic", side_clf, Expect(none=True))

    rec("deep_filter", "classifier:fz-deep", samples.classifier(name="fz-deep", filters={"sourceWhere": nested_not(400)}),
        Expect.dead("filter_too_complex"))
    long_like = {"path": ["body"], "operator": "Like", "valueText": "*" + "*".join(ALPHABET * 12) + "*"}
    rec("long_like_pattern", "classifier:fz-long-like",
        samples.classifier(name="fz-long-like", filters={"sourceWhere": long_like}), Expect.dead("filter_too_complex"))
    for key, value, reason, _path in bad_training():
        rec("bad", key, value, Expect.dead(reason))
    for dim in draw(st.integers(1, 40).filter(lambda d: d != samples.DIM), 5):
        ex = f"fz-exdim-{next(n)}"
        rec("bad", ex, samples.example(ex, np.ones(dim), "sport"), Expect.dead("vector_dimension_mismatch"))
    for pos in draw(st.integers(0, samples.DIM - 1), 3):
        v = np.ones(samples.DIM, np.float32)
        v[pos] = np.nan
        ex = f"fz-exnan-{next(n)}"
        rec("bad", ex, samples.example(ex, v, "sport"), Expect.dead("vector_not_finite"))
    ex = "fz-exdeep"
    body = orjson.dumps(samples.example(ex, np.ones(samples.DIM), "sport"))[:-1]
    rec("bad", ex, body + b',"properties":{"p":' + b"[" * 300 + b"]" * 300 + b"}}", Expect.dead("schema_violation"))
    # first examples of a new class with different dimensions: exactly one may get in
    for g, dims in enumerate(draw(st.lists(st.integers(2, 12), min_size=2, max_size=3, unique=True), 4)):
        for d in dims:
            ex = f"fz-conflict-{g}-{d}"
            rec("dim_conflict", ex, {**samples.example(ex, np.ones(d), "a"), "class": f"Conflict{g}"},
                Expect(none=True, reasons=frozenset({"vector_dimension_mismatch"}), group=f"Conflict{g}"))
    wrong = st.sampled_from([("labels", 3), ("labels", ["sport"]), ("id", 5), ("class", None), ("vector", "??")])
    for field_name, bad in draw(wrong, 5):
        ex = f"fz-extype-{next(n)}"
        rec("bad", ex, {**samples.example(ex, np.ones(samples.DIM), "sport"), field_name: bad},
            Expect.dead("schema_violation"))
    return seqs


# -- one stream ---------------------------------------------------------------------------------------
def stream(seed: int = SEED) -> list[Case]:
    """Every case, interleaved at random (fixed seed); a sequence (a chunked item, an example and
    its delete) keeps its order."""
    seqs = [[c] for c in objects()] + media() + training()
    rng = random.Random(seed)
    slots = [i for i, s in enumerate(seqs) for _ in s]
    rng.shuffle(slots)
    nxt = [0] * len(seqs)
    out = []
    for i in slots:
        out.append(seqs[i][nxt[i]])
        nxt[i] += 1
    return out
