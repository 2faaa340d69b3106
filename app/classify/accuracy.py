"""Online accuracy from the feedback topic: a pure fold over feedback records.

Per decider -- ``(classifier, version)`` where version is ``taxonomy@N`` or ``index@N`` -- and
per decided class: confusion counts (decided label -> the label the verdicts say is right,
``(rejected)`` when a reviewer only said it was wrong), and the precision of ``block`` and
``review`` decisions (confirmed / judged). Each reviewer's latest verdict on a result counts
once (a redelivered record or a changed mind does not count twice); a retraction removes the
result's verdicts. The console's overview and the Prometheus metrics read the same fold.

    >>> from app.schemas.feedback import Feedback
    >>> def fb(fid, reviewer, verdict, label=None, action="review", decided="toxic", item="c1"):
    ...     return Feedback.model_validate({"feedback_id": fid, "item_id": item, "result_id": item + "/tone",
    ...         "classifier": "tone", "property": "tone", "taxonomy": {"name": "tone", "version": 2},
    ...         "decision": {"action": action, "label": decided}, "verdict": verdict, "label": label,
    ...         "reviewer": reviewer, "at": 1})
    >>> acc = Accuracy()
    >>> for f in (fb("f1", "ana", "confirm"), fb("f2", "ana", "relabel", "calm", item="c2"),
    ...           fb("f3", "bo", "reject", item="c3"), fb("f3", "bo", "reject", item="c3"),
    ...           fb("f4", "ana", "confirm", action="block", item="c4")):
    ...     acc.add(f)
    >>> acc.confusion()[("tone", "tone@2")]
    {'toxic': {'toxic': 2, 'calm': 1, '(rejected)': 1}}
    >>> acc.precision()[("tone", "tone@2")]
    {'review': {'judged': 3, 'confirmed': 1, 'precision': 0.3333}, 'block': {'judged': 1, 'confirmed': 1, 'precision': 1.0}}
    >>> acc.add(fb("f5", "x", "confirm", item="c3").model_copy(update={"op": "retract"}))
    >>> acc.precision()[("tone", "tone@2")]["review"]
    {'judged': 2, 'confirmed': 1, 'precision': 0.5}
"""

from __future__ import annotations

from collections import defaultdict

from app.schemas.feedback import Feedback

REJECTED = "(rejected)"
Decider = tuple[str, str]  # (classifier, version)


class Accuracy:
    def __init__(self) -> None:
        self._latest: dict[tuple[str, str, str], Feedback] = {}  # (result_id, property, reviewer) -> verdict
        self.records = 0

    def add(self, fb: Feedback) -> None:
        self.records += 1
        if fb.op == "retract":
            for k in [k for k in self._latest if k[0] == fb.result_id and k[1] == fb.property]:
                del self._latest[k]
            return
        key = (fb.result_id, fb.property, fb.reviewer)
        old = self._latest.get(key)
        if old is None or (old.at, old.feedback_id) <= (fb.at, fb.feedback_id):
            self._latest[key] = fb

    def verdicts(self) -> list[Feedback]:
        return list(self._latest.values())

    def confusion(self) -> dict[Decider, dict[str, dict[str, int]]]:
        """decider -> decided label -> right label (or ``(rejected)``) -> count."""
        out: dict[Decider, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        for fb in self._latest.values():
            decided = fb.decision.label or "-"
            out[(fb.classifier, fb.version())][decided][fb.true_label() or REJECTED] += 1
        return {d: {c: dict(r) for c, r in m.items()} for d, m in out.items()}

    def precision(self) -> dict[Decider, dict[str, dict[str, float]]]:
        """decider -> action (block, review) -> judged, confirmed, precision (4 decimals)."""
        counts: dict[Decider, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        for fb in self._latest.values():
            if fb.decision.action in ("block", "review"):
                c = counts[(fb.classifier, fb.version())][fb.decision.action]
                c[0] += 1
                c[1] += fb.true_label() == fb.decision.label
        return {d: {a: {"judged": j, "confirmed": ok, "precision": round(ok / j, 4)} for a, (j, ok) in m.items()}
                for d, m in counts.items()}

    def class_precision(self) -> dict[Decider, dict[str, float]]:
        """decider -> decided class -> share of its judged decisions that were right.

        >>> a = Accuracy(); a.class_precision()
        {}
        """
        return {d: {c: round(row.get(c, 0) / sum(row.values()), 4) for c, row in m.items()}
                for d, m in self.confusion().items()}
