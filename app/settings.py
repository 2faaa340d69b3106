"""Every setting of the service, read from the environment (prefix ``LABELSTREAM_``).

    >>> Settings(broker="kafka://10.0.0.1:9092").broker
    'kafka://10.0.0.1:9092'
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


#: Shorter keys are refused at start: a guessable key is no key.
MIN_API_KEY_CHARS = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABELSTREAM_", extra="ignore")

    # Kafka and Faust
    app_id: str = "labelstream"
    broker: str = "kafka://127.0.0.1:9092"
    topic_prefix: str = "labelstream."
    topic_partitions: int | None = Field(None, ge=1, description="overrides the catalog's partition counts")
    # Replicas of every topic the service creates (catalog topics, table changelogs) and how many
    # must have a write before acks=all succeeds: 1/1 on the single dev broker, 3/2 on a
    # cluster (one broker may fail without losing a write or stopping producers).
    replication_factor: int = Field(1, ge=1)
    min_insync_replicas: int = Field(1, ge=1)
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    # exactly_once fails the fault tests with the pinned faust-streaming (bench/RESULTS.md, Reliability)
    allow_unsafe_exactly_once: bool = False
    store: str = "memory://"  # or rocksdb:// with the [rocksdb] extra
    # RocksDB memory of the whole worker, shared by every table partition's database (app/service/store.py)
    rocksdb_block_cache_mb: int = Field(256, ge=8)
    rocksdb_write_buffers_mb: int = Field(256, ge=8)
    data_dir: Path = Path("var/worker")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # How the other workers reach this one (requests for partitions it owns are forwarded here); empty:
    # http://<web_host>:<web_port>. Set it when web_host is a bind-all address (0.0.0.0) or behind NAT.
    web_canonical_url: str = ""
    web_enabled: bool = True
    # HTTP hardening (app/service/httpguard.py). Keys: comma-separated in LABELSTREAM_API_KEYS and/or
    # one per line in the file LABELSTREAM_API_KEYS_FILE ('#' comments); never in a committed file.
    api_keys: str = Field("", repr=False)
    api_keys_file: Path | None = None
    # Without keys the web server only binds to loopback; this lets it bind further anyway
    # (a private network with its own access control).
    web_allow_open: bool = False
    max_request_bytes: int = Field(8 * 1024 * 1024, ge=1, description="largest HTTP request body (413 beyond)")
    # Faust's /router tells anyone the URL of every worker (cluster layout); off unless a feature needs it.
    web_router_enabled: bool = False
    log_level: str = "info"
    # The console (app/service/console_views/): served by every worker on its web port, behind the keys.
    console_enabled: bool = True
    console_window: int = Field(10_000, ge=100, le=1_000_000, description="recent results the console keeps")
    emit_every: float = Field(0.05, gt=0, description="objects: a fetched batch is classified and emitted in "
                              "chunks of about this many seconds of work (results flow while a batch is worked)")
    gc_young_threshold: int = Field(
        50_000, ge=0, description="the cyclic GC's generation-0 threshold once the loaded state is frozen "
        "(app/service/gcsettle.py); 0: Python's default, 700")
    loop_stall_seconds: float = Field(1.0, gt=0, description="an event-loop stall longer than this is logged "
                                      "with every thread's stack (labelstream_event_loop_stall_seconds)")
    console_idle_seconds: float = Field(
        300, ge=0, description="the console's feed tails the output topics while a page, API call or live stream "
        "used it within this many seconds (0: always); feedback and training are always read")
    # Every worker republishes its counters on the compacted 'workers' topic (app/service/worker_report.py)
    # so any worker's console overview shows the whole deployment's agent restarts.
    worker_id: str = Field("", max_length=256, description="this worker's key on 'workers' (default <host>:<web port>)")
    worker_report_interval: float = Field(5.0, ge=0.1, le=3600, description="seconds between two reports")
    # A dead worker's partitions move after session_timeout: 10 s instead of Kafka's 45 s
    # default keeps a crash's gap short; heartbeats every 3 s keep live workers in the group.
    session_timeout: float = Field(10.0, gt=0)
    heartbeat_interval: float = Field(3.0, gt=0)
    commit_interval: float = Field(1.0, gt=0, description="seconds between two offset commits: what a worker "
                                   "killed outright redoes (at-least-once) is about this long of its input")

    # batching of the classifying agents
    batch_size: int = Field(1024, ge=1)  # 256 -> 1024: ~13 % more events/s under load (bench/throughput.py)
    batch_within: float = Field(0.05, gt=0)
    classify_threads: int = Field(2, ge=1)
    fetch_batch_wait_ms: int = Field(10, ge=0, le=1000, description="while records flow, the broker holds a fetch "
                                     "this long for fuller batches (app/service/fetchpace.py); 0: Faust's fixed settings")
    fetch_sessions: bool = Field(True, description="the worker's consumer fetches in incremental fetch sessions "
                                 "(Kafka's KIP-227: only changed partitions on the wire; app/service/fetchsession.py)")

    # limits on input (violations are dead-lettered with a reason)
    max_payload_bytes: int = 8 * 1024 * 1024
    max_vector_dim: int = 4096
    max_segments: int = 20_000
    max_prompts: int = 1_000
    # bounded work per record: where-filters (nesting, operands, nodes, Like pattern) and text to embed
    max_filter_depth: int = Field(32, ge=1, le=100)  # compiling recurses: 100 stays far from Python's limit
    max_filter_operands: int = Field(256, ge=1)
    max_filter_nodes: int = Field(1_000, ge=1)
    max_like_pattern: int = Field(256, ge=1)
    max_text_chars: int = Field(100_000, ge=1)

    # raw media content (app/core/decode_media.py; violations are dead-lettered) and hash banks
    max_media_bytes: int = Field(64 * 1024 * 1024, ge=1, description="decoded content of one media item")
    max_media_pixels: int = Field(40_000_000, ge=1, description="width x height of an image or video frame")
    max_media_duration: float = Field(600.0, gt=0, description="seconds of video")
    max_media_frames: int = Field(600, ge=1, description="sampled frames per item")
    media_frame_rate: float = Field(1.0, gt=0, le=60, description="video frames sampled per second")
    pdq_min_quality: int = Field(50, ge=0, le=100, description="frames with a lower PDQ quality are not matched")
    # vPDQ: a video matches an entry when both shares reach these: the query's hashed frames that
    # match the entry, and the entry's hashes matched by some frame (a banked image: 1 hash)
    vpdq_query_share: float = Field(0.0, ge=0, le=1)
    vpdq_target_share: float = Field(0.5, ge=0, le=1)

    # stored objects (the latest version of each object and its labels, for jobs over stored items)
    store_objects: bool = True
    # the media store: every assembled media item, for classification on request (Twelve Labs classify)
    store_media: bool = True

    # bounded state: table entries older than these (seconds; 0 = kept forever) are removed by the
    # sweeper (app/service/sweeper.py). Age counts from the entry's last write ("at" in its value).
    stored_objects_retention: float = Field(7 * 86400.0, ge=0)
    media_incomplete_ttl: float = Field(3600.0, ge=0, description="chunks of an item whose last chunk is older "
                                        "are dropped, with a media_incomplete dead letter")
    media_done_ttl: float = Field(86400.0, ge=0, description="done markers (they drop redelivered chunks)")
    media_cache_ttl: float = Field(86400.0, ge=0)
    jobs_retention: float = Field(7 * 86400.0, ge=0, description="job records and their progress are removed "
                                  "this long after the job started (0 = kept forever)")
    job_chunk: int = Field(1000, ge=1, description="stored objects a job classifies per step and partition "
                           "(progress is written after each step)")
    media_store_retention: float = Field(7 * 86400.0, ge=0, description="stored media items (since last written)")
    sweep_interval: float = Field(10.0, gt=0, description="seconds between two sweeps of the tables")
    sweep_batch: int = Field(1000, ge=1, description="keys examined per table per sweep (work on the event loop)")

    # media on request (/v1.2/classify, /api/v2/task): page tokens and a per-key rate limit
    classify_page_ttl: float = Field(3600.0, gt=0, description="seconds a classify page token stays valid")
    classify_rate_limit: int = Field(0, ge=0, description="classify requests per minute per API key (0: no limit)")
    classify_max_videos: int = Field(10_000, ge=1, description="videos one classify request may score")
    classify_peer_timeout: float = Field(600.0, gt=0, description="seconds a worker waits for another worker's "
                                         "share of a classify request (its partitions of the media store)")

    # kNN index
    knn_exact_threshold: int = 2_000
    annoy_n_trees: int | None = None
    annoy_search_k: int | None = None
    knn_index: Literal["annoy", "ivf"] = Field("annoy", description="the approximate index above the exact "
                                              "threshold: Annoy's forest, or an inverted file (FAISS IVF-Flat, "
                                              "app/index/ivf.py: several times Annoy's queries/s on 384-d embeddings)")
    ivf_nlist: int | None = Field(None, ge=1, description="inverted-file cells (default ~sqrt of the examples)")
    ivf_nprobe: int | None = Field(None, ge=1, description="cells scanned per query (default: calibrated at each "
                                   "build to recall@10 >= 0.98 against exact on the index's own examples)")
    index_build_process: bool = Field(True, description="build Annoy forests in a niced child process (off the "
                                      "worker's GIL and CPU priority; app/index/forest_proc.py), not on a thread")

    # vectorizer for text without vectors (zero-shot prompts, text events)
    vectorizer: Literal["none", "hashing", "minilm"] = "hashing"
    vector_dim: int = 384

    @model_validator(mode="after")
    def _safe_guarantee(self) -> "Settings":
        if self.processing_guarantee == "exactly_once" and not self.allow_unsafe_exactly_once:
            raise ValueError(
                "processing_guarantee=exactly_once crashes workers and loses records when partitions move between "
                "workers, and still duplicates results after a kill -9, with faust-streaming 0.15.3 (see "
                "bench/RESULTS.md, Reliability). Use at_least_once: results are idempotent, dedupe on result_id. "
                "LABELSTREAM_ALLOW_UNSAFE_EXACTLY_ONCE=1 runs it anyway.")
        return self

    @model_validator(mode="after")
    def _insync_fits(self) -> "Settings":
        """More in-sync replicas than replicas would refuse every write.

        >>> Settings(replication_factor=3, min_insync_replicas=2).topic_config()
        {'min.insync.replicas': '2'}
        >>> Settings(replication_factor=1, min_insync_replicas=2)
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings
          Value error, min_insync_replicas (2) > replication_factor (1): every acks=all write would fail ...
        """
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(f"min_insync_replicas ({self.min_insync_replicas}) > replication_factor "
                             f"({self.replication_factor}): every acks=all write would fail")
        return self

    def api_key_set(self) -> frozenset[str]:
        """The configured API keys, from ``api_keys`` and ``api_keys_file`` (empty: no keys).

        >>> sorted(Settings(api_keys="k" * 16 + ", " + "j" * 16).api_key_set())
        ['jjjjjjjjjjjjjjjj', 'kkkkkkkkkkkkkkkk']
        >>> Settings(api_keys="short").api_key_set()
        Traceback (most recent call last):
        ...
        ValueError: an API key in LABELSTREAM_API_KEYS has 5 characters: use at least 16 (e.g. openssl rand -hex 24)
        """
        keys = [("LABELSTREAM_API_KEYS", k.strip()) for k in self.api_keys.split(",") if k.strip()]
        if self.api_keys_file is not None:
            try:
                lines = self.api_keys_file.read_text().splitlines()
            except OSError as e:
                raise ValueError(f"LABELSTREAM_API_KEYS_FILE: cannot read {self.api_keys_file}: {e.strerror}") from None
            keys += [(str(self.api_keys_file), ln.strip()) for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        for where, key in keys:  # the message never shows the key
            if len(key) < MIN_API_KEY_CHARS:
                raise ValueError(f"an API key in {where} has {len(key)} characters: use at least "
                                 f"{MIN_API_KEY_CHARS} (e.g. openssl rand -hex 24)")
            if any(c.isspace() for c in key):
                raise ValueError(f"an API key in {where} contains white space")
        return frozenset(k for _, k in keys)

    def topic_config(self) -> dict[str, str]:
        """Per-topic Kafka config the settings add to every topic the service creates."""
        return {"min.insync.replicas": str(self.min_insync_replicas)}

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
