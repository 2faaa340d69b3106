"""A diff between two versions of a taxonomy: classes added, removed, changed (prompts, parent,
head), policies changed.

    >>> a = {"version": 1, "classes": [{"name": "calm", "prompts": ["nice"]}, {"name": "toxic", "prompts": ["rude"]}],
    ...      "policies": [{"action": "review", "classes": ["toxic"], "min_score": 0.5}]}
    >>> b = {"version": 2, "classes": [{"name": "toxic", "prompts": ["rude", "insult"]}, {"name": "spam", "prompts": ["buy"]}],
    ...      "policies": [{"action": "review", "classes": ["toxic"], "min_score": 0.6}]}
    >>> d = taxonomy_diff(a, b)
    >>> d["added"], d["removed"], d["changed"]
    (['spam'], ['calm'], {'toxic': {'prompts': {'added': ['insult'], 'removed': []}}})
    >>> d["policies"]["changed"]
    True
"""

from __future__ import annotations

from typing import Any


def _classes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc.get("classes") or []}


def taxonomy_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    a, b = _classes(old), _classes(new)
    changed: dict[str, Any] = {}
    for name in sorted(set(a) & set(b)):
        ca, cb = a[name], b[name]
        entry: dict[str, Any] = {}
        pa, pb = list(ca.get("prompts") or []), list(cb.get("prompts") or [])
        if pa != pb:
            entry["prompts"] = {"added": [p for p in pb if p not in pa], "removed": [p for p in pa if p not in pb]}
        for f in ("parent", "head"):
            if ca.get(f) != cb.get(f):
                entry[f] = {"from": ca.get(f), "to": cb.get(f)}
        if entry:
            changed[name] = entry
    pol_a, pol_b = old.get("policies") or [], new.get("policies") or []
    return {"from": old.get("version"), "to": new.get("version"),
            "added": sorted(set(b) - set(a)), "removed": sorted(set(a) - set(b)), "changed": changed,
            "policies": {"changed": pol_a != pol_b, "from": pol_a, "to": pol_b}}
