"""Proving query results: an inclusion proof for every row that is a sealed event.

Concept: the *proven result*. A result row that carries ``_LogIndex`` is a sealed event;
for each one this module builds a C2SP tlog-proof (https://c2sp.org/tlog-proof) against the
log's current signed checkpoint, with the entry in ``extra`` (as ``auditseal prove`` does,
docs/design.md "Proofs"), and verifies it before anything is shown:

1. the proof leads from ``SHA-256(0x00 || entry)`` to the signed root (``verify_tlog_proof``
   with the log's key and origin);
2. the row's ``_LeafHash``, when the result has one, is that leaf hash;
3. the index row of that entry is exactly what deriving it from the entry gives, so a
   row edited in the (untrusted) index cannot be shown as proven.

An auditor checks each proof offline with ``auditseal proof verify FILE --key VKEY``.
"""

# ruff: noqa: S608 -- SQL here is assembled from the schema module's constant table and
# column names only; query text from users is never interpolated into it.

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from auditseal.core.checkpoint import VerifiedCheckpoint
from auditseal.core.hashing import leaf_hash
from auditseal.core.tiles import TILE_WIDTH
from auditseal.core.tlogproof import TlogProof, verify_tlog_proof
from auditseal.errors import FormatError, IntegrityError
from auditseal.index import schema
from auditseal.index.duckdb_index import derive_row, insert_rows, log_reader
from auditseal.index.query import QueryResult, Searcher
from auditseal.log.local import LocalLog
from auditseal.log.reader import LogReader

__all__ = ["LOG_INDEX", "ProvenResult", "RowProof", "prove_result", "write_proofs"]

LOG_INDEX = "_LogIndex"


@dataclass(frozen=True)
class RowProof:
    """A verified inclusion proof of one result row's entry."""

    index: int
    leaf_hash: bytes
    proof: TlogProof

    @property
    def text(self) -> str:
        """The ``.tlog-proof`` file content (the signed note uses UTF-8)."""
        return self.proof.to_bytes().decode("utf-8")

    @property
    def file_name(self) -> str:
        """The name :func:`write_proofs` gives it."""
        return f"entry-{self.index}.tlog-proof"


@dataclass(frozen=True)
class ProvenResult:
    """Proofs for the rows of a result, all against one checkpoint.

    Attributes:
        checkpoint: the signed checkpoint every proof leads to.
        proofs: one per result row, ``None`` for rows that are not a sealed event.
    """

    checkpoint: VerifiedCheckpoint
    proofs: tuple[RowProof | None, ...]


def prove_result(log: LocalLog, searcher: Searcher, result: QueryResult,
                 checkpoint: VerifiedCheckpoint | None = None) -> ProvenResult:
    """Prove and verify every row of ``result`` that has a ``_LogIndex``.

    Raises:
        FormatError: the result has no ``_LogIndex`` column.
        InclusionProofError / SignatureError: a proof does not verify (the log is damaged).
        IntegrityError: an index row disagrees with the sealed entry (the index was edited).
    """
    if LOG_INDEX not in result.columns:
        raise FormatError(
            "--prove needs the _LogIndex column in the result to know which sealed event "
            "each row is; keep it, e.g. '| project TimeGenerated, Caller, _LogIndex'")
    column = result.columns.index(LOG_INDEX)
    hash_column = result.columns.index("_LeafHash") if "_LeafHash" in result.columns else None
    reader = log_reader(log, checkpoint)
    wanted = sorted({row[column] for row in result.rows if _is_index(row[column])})
    outside = [index for index in wanted if index >= reader.size]
    if outside:
        raise IntegrityError(what="not in the log", where=f"entry {outside[0]}",
                             detail=f"the index names it but the checkpoint has {reader.size} "
                             "entries; run 'auditseal index check'")
    entries = _entries(reader, wanted)
    proofs = {index: _prove(log, reader, index, entry) for index, entry in entries.items()}
    _check_rows(searcher, entries)
    out: list[RowProof | None] = []
    for row in result.rows:
        proof = proofs.get(row[column]) if _is_index(row[column]) else None
        if proof is not None and hash_column is not None and row[hash_column] is not None \
                and row[hash_column] != proof.leaf_hash.hex():
            raise IntegrityError(what="leaf hash differs", where=f"entry {proof.index}",
                                 detail=f"index row says {row[hash_column]}, the sealed entry "
                                 f"hashes to {proof.leaf_hash.hex()}")
        out.append(proof)
    return ProvenResult(reader.checkpoint, tuple(out))


def write_proofs(proven: ProvenResult, directory: Path) -> list[Path]:
    """Write ``entry-<index>.tlog-proof`` per proven entry and the ``checkpoint``."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for proof in {p.index: p for p in proven.proofs if p is not None}.values():
        path = directory / proof.file_name
        path.write_bytes(proof.proof.to_bytes())
        written.append(path)
    (directory / "checkpoint").write_bytes(proven.checkpoint.note_bytes)
    return written


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _entries(reader: LogReader, indexes: Sequence[int]) -> dict[int, bytes]:
    """The entries, reading each bundle once."""
    found: dict[int, bytes] = {}
    for bundle in sorted({index // TILE_WIDTH for index in indexes}):
        start = bundle * TILE_WIDTH
        found.update(reader.entries(start, start + TILE_WIDTH))
    return {index: found[index] for index in indexes}


def _prove(log: LocalLog, reader: LogReader, index: int, entry: bytes) -> RowProof:
    proof = TlogProof(index=index, hashes=tuple(reader.inclusion_proof(index)),
                      checkpoint=reader.checkpoint.note_bytes, extra=entry)
    verify_tlog_proof(proof, entry, [log.verifier()], origin=log.origin)
    return RowProof(index, leaf_hash(entry), proof)


def _check_rows(searcher: Searcher, entries: dict[int, bytes]) -> None:
    """The stored index rows must be what the sealed entries derive to."""
    if not entries:
        return
    with duckdb.connect() as fresh:
        fresh.execute("SET TimeZone='UTC'")
        for statement in schema.create_statements():
            fresh.execute(statement)
        insert_rows(fresh, [derive_row(index, entry) for index, entry in entries.items()])
        expected = fresh.execute(f"SELECT * FROM {schema.EVENTS_TABLE} ORDER BY _LogIndex"
                                 ).fetchall()
    stored: dict[int, list[tuple[object, ...]]] = {}
    for row in searcher.stored_rows(list(entries)):
        stored.setdefault(int(row[0]), []).append(row)
    names = [name for name, _ in schema.PHYSICAL_COLUMNS]
    for want in expected:
        index = int(want[0])
        have = stored.get(index, [])
        if len(have) == 1 and tuple(have[0]) == tuple(want):
            continue
        if not have or len(have) > 1:
            detail = f"the index holds {len(have)} rows for it"
        else:
            differ = [n for n, a, b in zip(names, have[0], want, strict=True) if a != b]
            detail = f"columns differ from the sealed entry: {', '.join(differ)}"
        raise IntegrityError(what="index disagrees with the log", where=f"entry {index}",
                             detail=f"{detail}; run 'auditseal index check' and "
                             "'auditseal index rebuild'")
