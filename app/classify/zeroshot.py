"""Zero-shot classification of a batch of objects against the classifier's taxonomies.

A ``zeroshot`` classifier names one or more taxonomies ("models", as in Yandex Vision's
several models per request). ``classifyProperties[i]`` is labelled from ``taxonomies[i]``
(or from the only taxonomy when there is one), Weaviate-style: the nearest class,
``targetWhere`` limiting the candidates. Each result also carries, per taxonomy, the top
classes of each head (``top``), the best path through a hierarchy and the moderation
decision; policy hits become moderation records. The full distributions -- every class
with a probability (Yandex ``models``), every leaf's score (Hive ``heads``) -- are opt-in
(the classifier's ``distributions``): with 100 classes they made a result 11 KB, five times
the event, and serializing them was most of a zero-shot event's cost.

All taxonomies come from the batch's snapshot, so every event of a batch is scored
against exactly one version of each taxonomy, and the result names it.
"""

from __future__ import annotations

import numpy as np

from collections.abc import Callable, Sequence
from typing import Any

from app.classify.codec import Rejected
from app.classify.state import Classifier, Snapshot
from app.core.zeroshot import (best_paths, decide, model_output, multi_head_output, score, top_classes,
                               weaviate_zeroshot)
from app.schemas.results import ModerationHit, ResultDoc, TaxonomyRef


def taxonomy_vectorizer(snap: Snapshot, c: Classifier) -> str:
    """The vectorizer that embeds text for zero-shot classifier ``c``: its taxonomies' (one for all)."""
    missing = [t for t in c.spec.taxonomies if t not in snap.taxonomies]
    if missing:
        raise Rejected("unknown_taxonomy", f"classifier {c.name!r} uses taxonomies not published yet: {missing}", "class")
    names = sorted({snap.taxonomies[t].vectorizer.name for t in c.spec.taxonomies})
    if len(names) > 1:
        raise Rejected("vectorizer_mismatch", f"classifier {c.name!r} mixes taxonomies embedded with {names}: "
                       "text cannot be in both spaces; send a vector", "text")
    if names[0] == "none":
        raise Rejected("vectorizer_error", f"the taxonomies of classifier {c.name!r} have no vectorizer "
                       "(vectorizer 'none'): send a vector instead of text", "text")
    return names[0]


def run_zeroshot(snap: Snapshot, c: Classifier, items: Sequence[Any], q: np.ndarray,
                 base: Callable[[Any, Classifier], dict[str, Any]]) -> list[tuple[ResultDoc | Rejected, list[ModerationHit]]]:
    """Score the rows ``q`` (one per item, already in the taxonomies' space) against every taxonomy of ``c``."""
    spec = c.spec
    missing = [t for t in spec.taxonomies if t not in snap.taxonomies]
    if missing:
        r = Rejected("unknown_taxonomy", f"classifier {spec.name!r} uses taxonomies not published yet: {missing}", "class")
        return [(r, [])] * len(items)
    per_tax = {}
    full = set(spec.distributions)
    for t in spec.taxonomies:
        ct = snap.taxonomies[t]
        s = score(q, ct)
        per_tax[t] = (ct, s, model_output(s) if "models" in full else None,
                      multi_head_output(s) if "heads" in full else top_classes(s), best_paths(s), decide(s))
    # classifyProperties[i] from taxonomies[i], or all from the only one (the schema refuses other counts)
    prop_tax = {p: spec.taxonomies[i if len(spec.taxonomies) > 1 else 0] for i, p in enumerate(spec.classifyProperties)}
    nearest_by_prop = {p: weaviate_zeroshot(per_tax[t][1], [p], c.target_where) for p, t in prop_tax.items()}
    refs = [{"name": t, "version": v[0].version} for t, v in per_tax.items()]  # Result.taxonomies, one list per batch
    out: list[tuple[ResultDoc | Rejected, list[ModerationHit]]] = []
    for row, item in enumerate(items):
        labels, conf, zs = {}, {}, {}
        for p in spec.classifyProperties:
            m = nearest_by_prop[p][row][p]
            labels[p] = m["class"] if m else None
            conf[p] = m["probability"] if m else 0.0
            zs[p] = m
        models, heads, paths, policy, hits = [], {}, {}, {}, []
        for t, (ct, s, mo, ho, bp, dec) in per_tax.items():
            if mo is not None:
                models.append({"model": t, "version": ct.version, "properties": mo[row]})
            heads[t], paths[t], policy[t] = ho[row], bp[row], dec[row].to_dict()
            if dec[row].hit:
                hits.append(_hit(item, ct, s, row, dec[row]))
        detail: dict[str, Any] = {"zeroshot": zs}
        if models:
            detail["models"] = models
        detail["heads" if "heads" in full else "top"] = heads
        detail.update(paths=paths, policy=policy)
        res = ResultDoc(**base(item, c), labels=labels, confidence=conf, taxonomies=refs, detail=detail)
        out.append((res, hits))
    return out


def _hit(item, ct, s, row: int, d) -> ModerationHit:
    return ModerationHit(
        item_id=item.event.id, action=d.action, rule=d.rule_name or f"{ct.name}#{d.rule}",
        taxonomy=TaxonomyRef(name=ct.name, version=ct.version), class_name=d.class_name, score=float(d.score),
        scores=dict(zip(ct.class_names, s.probability[row].tolist())), source=item.source,
    )
