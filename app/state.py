"""The model state a worker classifies with: classifiers, compiled taxonomies, kNN indexes.

Fed only by the training replica (``apply``), read by the classifying agents. Classifier
and taxonomy maps are replaced, never mutated (copy-on-write), so a batch that took a
``snapshot()`` sees one consistent version for all its events: a new taxonomy version
takes effect at the next batch, never half-way through one. kNN indexes take upserts and
deletes live (exact overlay); each result names the index version it used.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import orjson

from app.core.filters import Predicate, compile_where
from app.index.knn import KnnIndexes
from app.index.manager import Example as IndexExample
from app.schemas.training import (CLASSIFIER_PREFIX, TAXONOMY_PREFIX, ClassifierDef, Example,
                                  TaxonomyRecord, parse_training)
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classifier:
    """A classifier definition with its where-filters compiled once."""

    spec: ClassifierDef
    source_where: Predicate | None
    training_where: Predicate | None
    target_where: Predicate | None

    @classmethod
    def compile(cls, spec: ClassifierDef) -> "Classifier":
        f = spec.filters
        comp = lambda w: compile_where(w) if w else None  # noqa: E731
        return cls(spec, comp(f.sourceWhere), comp(f.trainingSetWhere), comp(f.targetWhere))

    @property
    def name(self) -> str:
        return self.spec.name

    def applies_to(self, properties: dict[str, Any]) -> bool:
        return self.source_where is None or self.source_where(properties)


@dataclass(frozen=True)
class Snapshot:
    classifiers_by_class: dict[str, tuple[Classifier, ...]]
    taxonomies: dict[str, Any]  # name -> CompiledTaxonomy


class ModelState:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.indexes = KnnIndexes(settings)
        self._lock = threading.Lock()  # serialises writers; readers take snapshots
        self._classifiers: dict[str, Classifier] = {}
        self._taxonomies: dict[str, Any] = {}
        self._snapshot = Snapshot({}, {})
        self._vectorizers: dict[str, Any] = {}
        self._taxonomy_docs: dict[str, bytes] = {}

    # -- readers -----------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def vectorizer(self, name: str | None = None):
        from app.core.vectorizers import get_vectorizer

        name = name or self.settings.vectorizer
        if name not in self._vectorizers:
            self._vectorizers[name] = get_vectorizer(name, dim=self.settings.vector_dim)
        return self._vectorizers[name]

    def taxonomy_doc(self, key: str) -> bytes | None:
        """The stored record of ``taxonomy:<name>`` (to refuse version regressions)."""
        return self._taxonomy_docs.get(key)

    # -- the one writer: the training replica ----------------------------------------
    def apply(self, key: str, value: bytes | None) -> None:
        with self._lock:
            if value is None:
                self._delete(key)
            else:
                rec = parse_training(orjson.loads(value))
                self._upsert(rec)
                if isinstance(rec, TaxonomyRecord):
                    self._taxonomy_docs[key] = value
            self._publish()

    def _delete(self, key: str) -> None:
        if key.startswith(CLASSIFIER_PREFIX):
            self._classifiers = {k: v for k, v in self._classifiers.items() if k != key[len(CLASSIFIER_PREFIX):]}
        elif key.startswith(TAXONOMY_PREFIX):
            self._taxonomy_docs.pop(key, None)
            self._taxonomies = {k: v for k, v in self._taxonomies.items() if k != key[len(TAXONOMY_PREFIX):]}
        else:
            self.indexes.delete(key)

    def _upsert(self, rec: Example | ClassifierDef | TaxonomyRecord) -> None:
        if isinstance(rec, Example):
            self.indexes.upsert(IndexExample(rec.id, rec.class_, rec.vector, rec.properties, rec.labels))
        elif isinstance(rec, ClassifierDef):
            self._classifiers = {**self._classifiers, rec.name: Classifier.compile(rec)}
        else:
            from app.core.taxonomy import compile_taxonomy

            compiled = compile_taxonomy(rec, self.vectorizer(rec.vectorizer), max_prompts=self.settings.max_prompts)
            self._taxonomies = {**self._taxonomies, rec.name: compiled}

    def _publish(self) -> None:
        by_class: dict[str, list[Classifier]] = {}
        for c in sorted(self._classifiers.values(), key=lambda c: c.name):
            by_class.setdefault(c.spec.class_, []).append(c)
        self._snapshot = Snapshot({k: tuple(v) for k, v in by_class.items()}, dict(self._taxonomies))

    def close(self) -> None:
        self.indexes.close()
