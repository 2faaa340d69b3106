"""Versioned Annoy snapshot files: write new, ``os.replace`` into place, mmap, clean up.

Layout under ``data_dir`` for an index named ``name``::

    <name>.v<version>.npz   sidecar: item ids (Annoy item i -> example id), set hash, meta
    <name>.v<version>.ann   the forest: Annoy's (memory-mapped when loaded), or, for an index of
                            kind "ivf", a FAISS inverted file (:mod:`app.index.ivf`, read in whole)

Rules that keep a live worker safe:

* a version is written once under a fresh name and never overwritten, so a file that is
  memory-mapped by a running search is never modified (POSIX keeps an unlinked file's
  pages alive until the last map goes away, so deleting old versions is safe too);
* each file is written to ``*.tmp-<pid>``, fsynced, then ``os.replace``d: a reader or a
  restart sees either no file or a complete one; the sidecar goes first and a version
  counts only when both files exist, so a crash between the two leaves nothing usable
  and the leftovers are removed by :func:`remove_stale`.

>>> import tempfile; d = Path(tempfile.mkdtemp())
>>> latest(d, "Article.topic") is None
True
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from annoy import AnnoyIndex

from app.core.knn import Metric

__all__ = ["Forest", "Snapshot", "ann_tmp", "annoy_metric", "latest", "list_snapshots", "load_annoy", "load_forest",
           "read_sidecar", "remove_stale", "safe_name", "serving", "write_snapshot"]


class Forest(Protocol):
    """A built approximate index as this module handles it: an ``AnnoyIndex``, or an
    :class:`app.index.ivf.IvfForest` (same three methods)."""

    def get_n_items(self) -> int: ...

    def save(self, fn: str) -> object: ...

    def unload(self) -> object: ...


def annoy_metric(metric: Metric) -> Literal["angular", "euclidean"]:
    # Cosine rows are stored unit-length; Annoy's angular distance is sqrt(2 (1 - cos)).
    return "angular" if metric == "cosine" else "euclidean"


def safe_name(name: str) -> str:
    """File-system safe, collision-free spelling of an index name.

    >>> safe_name("Article.hasTopic"), safe_name("a/b c")
    ('Article.hasTopic', 'a%2Fb%20c')
    """
    return "".join(c if c.isalnum() or c in "._-" else f"%{ord(c):02X}" for c in name)


@dataclass(frozen=True)
class Snapshot:
    version: int
    ann: Path
    sidecar: Path


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(safe_name(name))}\.v(\d+)\.(ann|npz)(\.tmp-\d+)?$")


def list_snapshots(data_dir: Path, name: str) -> list[Snapshot]:
    """Complete (both files present) snapshots of ``name``, oldest first."""
    if not data_dir.is_dir():
        return []
    pat = _pattern(name)
    found: dict[int, set[str]] = {}
    for p in data_dir.iterdir():
        m = pat.match(p.name)
        if m and not m.group(3):
            found.setdefault(int(m.group(1)), set()).add(m.group(2))
    base = safe_name(name)
    return [Snapshot(v, data_dir / f"{base}.v{v}.ann", data_dir / f"{base}.v{v}.npz")
            for v in sorted(found) if found[v] == {"ann", "npz"}]


def latest(data_dir: Path, name: str) -> Snapshot | None:
    snaps = list_snapshots(data_dir, name)
    return snaps[-1] if snaps else None


def max_version(data_dir: Path, name: str) -> int:
    """Highest version number present on disk, complete or not (versions never go back)."""
    if not data_dir.is_dir():
        return 0
    pat = _pattern(name)
    return max((int(m.group(1)) for p in data_dir.iterdir() if (m := pat.match(p.name))),
               default=0)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ann_tmp(data_dir: Path, name: str, version: int) -> Path:
    """Where version ``version``'s forest is built on disk (``AnnoyIndex.on_disk_build``)
    before :func:`write_snapshot` renames it into place; :func:`remove_stale` removes leftovers.

    >>> ann_tmp(Path("d"), "A.b", 3).name == f"A.b.v3.ann.tmp-{os.getpid()}"
    True
    """
    return data_dir / f"{safe_name(name)}.v{version}.ann.tmp-{os.getpid()}"


def write_snapshot(data_dir: Path, name: str, version: int, forest: Forest,
                   ids: list[str], set_hash: int, meta: dict[str, Any], *,
                   built_at: Path | None = None) -> Snapshot:
    """Persist a BUILT forest and its sidecar as ``version``; ``forest`` is unloaded after.

    ``built_at``: the forest was built on disk there (:func:`ann_tmp`), so its file is
    complete already and is only synced and renamed. Why: ``AnnoyIndex.save`` writes the whole
    file while holding the GIL (seconds at 100k x 384-d: every other thread of the worker,
    the event loop included, stops); an on-disk build writes it inside ``build``, which
    releases the GIL. Returns the final paths; load the forest with :func:`load_annoy`.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    base, pid = safe_name(name), os.getpid()
    snap = Snapshot(version, data_dir / f"{base}.v{version}.ann",
                    data_dir / f"{base}.v{version}.npz")
    if snap.ann.exists() or snap.sidecar.exists():
        raise FileExistsError(f"refusing to overwrite snapshot {snap.ann}")
    side_tmp = snap.sidecar.with_name(f"{snap.sidecar.name}.tmp-{pid}")
    info = dict(meta, version=version, set_hash=f"{set_hash:032x}", count=len(ids))
    with open(side_tmp, "wb") as fh:
        np.savez(fh, ids=np.array(ids, dtype=str), info=np.array(json.dumps(info)))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(side_tmp, snap.sidecar)
    tmp = snap.ann.with_name(f"{snap.ann.name}.tmp-{pid}")
    if built_at is None:
        forest.save(str(tmp))
    elif built_at != tmp:
        raise ValueError(f"{built_at}: an on-disk build of v{version} belongs at {tmp}")
    forest.unload()  # save() and on_disk_build() map the tmp file; drop that map before the rename
    _fsync(tmp)
    os.replace(tmp, snap.ann)
    dir_fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the renames durable
    finally:
        os.close(dir_fd)
    return snap


def read_sidecar(path: Path) -> tuple[list[str], int, dict[str, Any]]:
    """``(ids, set_hash, info)`` from a sidecar written by :func:`write_snapshot`."""
    with np.load(path, allow_pickle=False) as z:
        ids = z["ids"].tolist()
        info = json.loads(str(z["info"]))
    return ids, int(info["set_hash"], 16), info


def load_annoy(path: Path, dim: int, metric: Metric) -> AnnoyIndex:
    forest = AnnoyIndex(dim, annoy_metric(metric))
    forest.load(str(path))  # mmap: cheap, shared with the page cache
    return forest


def load_forest(path: Path, meta: dict[str, Any]) -> Forest:
    """The forest of a snapshot whose sidecar meta is ``meta`` (its ``kind``: Annoy by default)."""
    if meta.get("kind", "annoy") == "ivf":
        from app.index import ivf  # FAISS is loaded only by a worker that uses it
        return ivf.load(path, meta["metric"])
    return load_annoy(path, meta["dim"], meta["metric"])


def serving(forest: Forest, path: Path, meta: dict[str, Any]) -> Forest:
    """``forest``, just written to ``path`` by :func:`write_snapshot`, ready to serve: Annoy's
    (unmapped by the write) is mapped again from its final path; an inverted file, held in
    memory, serves as it is (reading the file back would read it a second time)."""
    return forest if meta.get("kind", "annoy") == "ivf" else load_forest(path, meta)


def remove_stale(data_dir: Path, name: str, keep_version: int | None) -> list[Path]:
    """Delete every file of ``name`` except version ``keep_version`` (and tmp leftovers)."""
    if not data_dir.is_dir():
        return []
    pat, removed = _pattern(name), []
    for p in data_dir.iterdir():
        m = pat.match(p.name)
        if m and (m.group(3) or int(m.group(1)) != keep_version):
            try:
                p.unlink()
                removed.append(p)
            except FileNotFoundError:
                pass
    return removed
