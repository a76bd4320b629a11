"""Configuration as frozen dataclasses, validated once at construction. Units in names."""

from __future__ import annotations

from dataclasses import dataclass

from auditseal.errors import ConfigError


@dataclass(frozen=True)
class WriterConfig:
    """How the log writer batches, publishes and protects what it writes.

    Attributes:
        commit_max_entries: most entries made durable by one group commit (one fsync).
        seal_directly_from: a group commit of at least this many entries is sealed at once
            (bundles, tiles, checkpoint) instead of journaled, on stores that create a
            batch in order (the filesystem): each byte is then written once.
        publish_interval_s: a background publisher signs a new checkpoint this often when
            entries are pending (the append-to-checkpoint latency bound).
        publish_max_pending: publish as soon as this many entries are pending (and seal
            at most this many per checkpoint, which bounds a publish's memory).
        max_unsealed: refuse new appends (OverloadError, HTTP 503) while this many
            acknowledged entries wait for sealing, e.g. during a storage outage.
        journal_segment_bytes: start a new journal segment past this size.
        fsync: make writes durable before acknowledging them (off only in throwaway tests).
        set_immutable: set the file system's immutable attribute on sealed files where the
            process may.
    """

    commit_max_entries: int = 8192
    seal_directly_from: int = 1024
    publish_interval_s: float = 0.1
    publish_max_pending: int = 65_536
    max_unsealed: int = 4_000_000
    journal_segment_bytes: int = 64 << 20
    fsync: bool = True
    set_immutable: bool = True

    def __post_init__(self) -> None:
        if self.commit_max_entries < 1:
            raise ConfigError("commit_max_entries must be at least 1")
        if self.seal_directly_from < 1:
            raise ConfigError("seal_directly_from must be at least 1")
        if not 0.001 <= self.publish_interval_s <= 3600:
            raise ConfigError("publish_interval_s must be between 0.001 and 3600 seconds")
        if self.publish_max_pending < 1:
            raise ConfigError("publish_max_pending must be at least 1")
        if self.max_unsealed < self.publish_max_pending:
            raise ConfigError("max_unsealed must be at least publish_max_pending")
        if self.journal_segment_bytes < 1 << 16:
            raise ConfigError("journal_segment_bytes must be at least 64 KiB")
