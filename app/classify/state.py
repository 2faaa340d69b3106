"""The model state a worker classifies with: classifiers, compiled taxonomies, kNN indexes.

Fed only by the training replica (``apply``), read by the classifying agents. Classifier
and taxonomy maps are replaced, never mutated (copy-on-write), so a batch that took a
``snapshot()`` sees one consistent version for all its events: a new taxonomy version
takes effect at the next batch, never half-way through one. kNN indexes take upserts and
deletes live (exact overlay); each result names the index version it used.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import orjson

from app.classify.banks import apply_bank, is_bank_key
from app.core.filters import FilterLimits, Predicate, compile_where
from app.core.taxonomy import CompiledTaxonomy
from app.core.vectorizers import Vectorizer, get_vectorizer
from app.index.hashbank import HashBanks
from app.index.knn import KnnIndexes
from app.index.manager import Example as IndexExample
from app.schemas.banks import BankEntry, BankRecord
from app.schemas.jobs import CLASS_PREFIX, ClassDecl
from app.schemas.training import (CLASSIFIER_PREFIX, INDEX_PREFIX, PROMPT_PREFIX, TAXONOMY_PREFIX, AnyRecord,
                                  ClassifierDef, Example, IndexRecord, PromptVector, TaxonomyRecord,
                                  parse_training)
from app.settings import Settings

log = logging.getLogger(__name__)


def filter_limits(settings: Settings) -> FilterLimits:
    """The where-filter limits a worker compiles with (bounded work per training record)."""
    return FilterLimits(max_depth=settings.max_filter_depth, max_operands=settings.max_filter_operands,
                        max_nodes=settings.max_filter_nodes, max_like_pattern=settings.max_like_pattern)


@dataclass(frozen=True)
class Classifier:
    """A classifier definition with its where-filters compiled once."""

    spec: ClassifierDef
    source_where: Predicate | None
    training_where: Predicate | None
    target_where: Predicate | None

    @classmethod
    def compile(cls, spec: ClassifierDef, limits: FilterLimits | None = None) -> "Classifier":
        f = spec.filters
        comp = lambda w: compile_where(w, limits=limits or FilterLimits()) if w else None  # noqa: E731
        return cls(spec, comp(f.sourceWhere), comp(f.trainingSetWhere), comp(f.targetWhere))

    @property
    def name(self) -> str:
        return self.spec.name

    def applies_to(self, properties: dict[str, Any]) -> bool:
        return self.source_where is None or self.source_where(properties)


def fingerprint(value: bytes) -> str:
    """The content fingerprint of a training-table value (its canonical bytes).

    >>> fingerprint(b'{"a":1}') == fingerprint(b'{"a":1}') != fingerprint(b'{"a":2}')
    True
    """
    return hashlib.sha256(value).hexdigest()


Compiled = Union["Classifier", CompiledTaxonomy]


class CompileCache:
    """Compiled classifiers and taxonomies by content fingerprint, so a record is parsed and compiled
    once per worker: validation compiles the value it writes to the table, and the replica, reading
    the same bytes back from the changelog, takes the compiled form instead of compiling again.
    Bounded (least recently used out), shared by the validating and the replica threads.

    >>> cache = CompileCache(size=1)
    >>> cache.put("a", 1); cache.put("b", 2)
    >>> cache.take("a"), cache.take("b"), cache.take("b")
    (None, 2, None)
    """

    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict[str, Compiled] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, fp: str, compiled: Compiled) -> None:
        with self._lock:
            self._items[fp] = compiled
            self._items.move_to_end(fp)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def take(self, fp: str) -> Compiled | None:
        """The compiled form, removed from the cache (the model state holds it from now on)."""
        with self._lock:
            return self._items.pop(fp, None)


@dataclass(frozen=True)
class Snapshot:
    classifiers_by_class: dict[str, tuple[Classifier, ...]]
    taxonomies: dict[str, CompiledTaxonomy]
    #: declared classes (``class:<name>`` training records): their objects are stored for jobs
    classes: dict[str, ClassDecl] = field(default_factory=dict)
    indexes: dict[str, IndexRecord] = field(default_factory=dict)  # media indexes: their prompt spaces


class ModelState:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.indexes = KnnIndexes(settings)
        self.banks = HashBanks()  # hash banks and their entries (app/classify/banks.py)
        self._lock = threading.Lock()  # serialises writers; readers take snapshots
        self._classifiers: dict[str, Classifier] = {}
        self._taxonomies: dict[str, CompiledTaxonomy] = {}
        self._classes: dict[str, ClassDecl] = {}
        self._indexes: dict[str, IndexRecord] = {}
        # (index, option, prompt) -> unit float32 vector: precomputed prompt vectors, many (not copied
        # per write like the maps above); a request reads each one once through prompt_vector()
        self._prompt_vectors: dict[tuple[str, str, str], np.ndarray] = {}
        self._snapshot = Snapshot({}, {})
        self._vectorizers: dict[str, Vectorizer] = {}
        self._taxonomy_docs: dict[str, bytes] = {}
        self.compiled = CompileCache()
        # which vectorizer embedded each text example, per class: text is only ever compared in one space
        self._example_space: dict[str, tuple[str, str]] = {}  # example id -> (class, vectorizer)
        self._spaces: dict[str, Counter[str]] = {}  # class -> vectorizer -> text examples
        # examples validated and written to the training table that the replica has not applied
        # yet: example id -> (class, dimension). The indexes lag the table; without this, the first
        # examples of a class with different dimensions pass when they come in different batches.
        self._unapplied: dict[str, tuple[str, int]] = {}

    # -- readers -----------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def vectorizer(self, name: str | None = None) -> Vectorizer:
        name = name or self.settings.vectorizer
        if name not in self._vectorizers:
            self._vectorizers[name] = get_vectorizer(name, dim=self.settings.vector_dim,
                                                     max_chars=self.settings.max_text_chars)
        return self._vectorizers[name]

    def example_vectorizers(self, class_name: str) -> set[str]:
        """The vectorizers that embedded the text examples of ``class_name`` (empty: vectors only)."""
        return {v for v, n in self._spaces.get(class_name, Counter()).items() if n > 0}

    def unapplied_dim(self, class_name: str) -> int | None:
        """The dimension of an example of ``class_name`` accepted but not applied yet, if any."""
        with self._lock:
            return next((d for c, d in self._unapplied.values() if c == class_name), None)

    def accepted_example(self, example_id: str, class_name: str, dim: int) -> None:
        """Training validation accepted this example: until the replica applies it, it holds its class's dimension."""
        with self._lock:
            self._unapplied[example_id] = (class_name, dim)

    def prompt_vector(self, index_id: str, option: str, prompt: str) -> np.ndarray | None:
        """A precomputed prompt vector (``prompt_vector`` records), or None."""
        return self._prompt_vectors.get((index_id, option, prompt))

    def taxonomy_doc(self, key: str) -> bytes | None:
        """The stored record of ``taxonomy:<name>`` (to refuse version regressions)."""
        return self._taxonomy_docs.get(key)

    # -- the one writer: the training replica ----------------------------------------
    def apply(self, key: str, value: bytes | None) -> None:
        with self._lock:
            self._unapplied.pop(key, None)  # the indexes know it now (or refused it)
            if is_bank_key(key):
                apply_bank(self.banks, key, value)
            elif value is None:
                self._delete(key)
            elif not self._adopt(key, value):
                rec = parse_training(orjson.loads(value))
                assert not isinstance(rec, (BankRecord, BankEntry)), "bank keys are applied above"
                self._upsert(rec)
                if isinstance(rec, TaxonomyRecord):
                    self._taxonomy_docs[key] = value
            self._publish()

    def loading(self) -> None:
        """A replica starts loading the training set: kNN index builds wait until :meth:`caught_up`
        (a build of a half-loaded set is thrown away by the next one; nothing is classified before
        catch-up anyway). A fresh worker loading 100k examples built ~10 such indexes."""
        self.indexes.hold_builds()

    def caught_up(self) -> None:
        """The replica has read the whole training changelog: settle what bulk loading left behind
        (the hash banks' overlay goes into their built index; the kNN builds held by :meth:`loading`
        run: one build of the whole set)."""
        self.indexes.release_builds()
        self.banks.compact()

    def _adopt(self, key: str, value: bytes) -> bool:
        """Take the form validation compiled from these very bytes, if it is still cached."""
        if not key.startswith((CLASSIFIER_PREFIX, TAXONOMY_PREFIX)):
            return False
        compiled = self.compiled.take(fingerprint(value))
        if isinstance(compiled, Classifier) and key.startswith(CLASSIFIER_PREFIX):
            self._classifiers = {**self._classifiers, compiled.name: compiled}
            return True
        if isinstance(compiled, CompiledTaxonomy) and key.startswith(TAXONOMY_PREFIX):
            self._taxonomies = {**self._taxonomies, compiled.name: compiled}
            self._taxonomy_docs[key] = value
            return True
        return False

    def _delete(self, key: str) -> None:
        if key.startswith(CLASS_PREFIX):
            self._classes = {k: v for k, v in self._classes.items() if k != key[len(CLASS_PREFIX):]}
        elif key.startswith(CLASSIFIER_PREFIX):
            self._classifiers = {k: v for k, v in self._classifiers.items() if k != key[len(CLASSIFIER_PREFIX):]}
        elif key.startswith(TAXONOMY_PREFIX):
            self._taxonomy_docs.pop(key, None)
            self._taxonomies = {k: v for k, v in self._taxonomies.items() if k != key[len(TAXONOMY_PREFIX):]}
        elif key.startswith(INDEX_PREFIX):
            self._indexes = {k: v for k, v in self._indexes.items() if k != key[len(INDEX_PREFIX):]}
        elif key.startswith(PROMPT_PREFIX):
            try:
                index_id, option, prompt = orjson.loads(key[len(PROMPT_PREFIX):])
            except (orjson.JSONDecodeError, ValueError, TypeError):
                return
            self._prompt_vectors.pop((index_id, option, prompt), None)
        else:
            self.indexes.delete(key)
            self._forget_space(key)

    def _upsert(self, rec: AnyRecord | ClassDecl) -> None:
        if isinstance(rec, ClassDecl):
            self._classes = {**self._classes, rec.class_: rec}
        elif isinstance(rec, IndexRecord):
            self._indexes = {**self._indexes, rec.id: rec}
        elif isinstance(rec, PromptVector):
            assert rec.vector is not None
            v = np.asarray(rec.vector, np.float32)
            self._prompt_vectors[(rec.index_id, rec.option, rec.prompt)] = v / max(float(np.linalg.norm(v)), 1e-12)
        elif isinstance(rec, Example):
            assert rec.vector is not None, "stored examples always carry their vector (validation embeds text)"
            self.indexes.upsert(IndexExample(rec.id, rec.class_, rec.vector, rec.properties, rec.labels))
            self._forget_space(rec.id)
            if rec.vectorizer is not None:
                self._example_space[rec.id] = (rec.class_, rec.vectorizer)
                self._spaces.setdefault(rec.class_, Counter())[rec.vectorizer] += 1
        elif isinstance(rec, ClassifierDef):
            self._classifiers = {**self._classifiers, rec.name: Classifier.compile(rec, filter_limits(self.settings))}
        elif isinstance(rec, TaxonomyRecord):  # banks are routed to self.banks in apply(), never here
            from app.core.taxonomy import compile_taxonomy

            compiled = compile_taxonomy(rec, self.vectorizer(rec.vectorizer), max_prompts=self.settings.max_prompts)
            self._taxonomies = {**self._taxonomies, rec.name: compiled}

    def _forget_space(self, example_id: str) -> None:
        old = self._example_space.pop(example_id, None)
        if old is not None:
            self._spaces[old[0]][old[1]] -= 1

    def _publish(self) -> None:
        by_class: dict[str, list[Classifier]] = {}
        for c in sorted(self._classifiers.values(), key=lambda c: c.name):
            by_class.setdefault(c.spec.class_, []).append(c)
        self._snapshot = Snapshot({k: tuple(v) for k, v in by_class.items()}, dict(self._taxonomies),
                                  dict(self._classes), self._indexes)

    def close(self) -> None:
        self.indexes.close()
