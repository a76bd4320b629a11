"""The search index: DuckDB rows derived from the sealed log, queried with KQL or SQL.

The index is derived data: :func:`update_index` feeds it from the log (call it after each
publish), :func:`rebuild_index` recreates it, :func:`check_index` compares it with the log.
Queries (:func:`run_query`, :class:`Searcher`) are read-only; :func:`prove_result` proves
each result row that is a sealed event against the current signed checkpoint.
"""

from auditseal.index.duckdb_index import (
    IndexFinding,
    IndexReport,
    IndexStatus,
    IndexUpdate,
    check_index,
    index_path,
    index_status,
    rebuild_index,
    update_index,
)
from auditseal.index.prove import ProvenResult, RowProof, prove_result, write_proofs
from auditseal.index.query import (
    QueryResult,
    Searcher,
    open_searcher,
    run_query,
    translate_kql,
)

__all__ = [
    "IndexFinding",
    "IndexReport",
    "IndexStatus",
    "IndexUpdate",
    "ProvenResult",
    "QueryResult",
    "RowProof",
    "Searcher",
    "check_index",
    "index_path",
    "index_status",
    "open_searcher",
    "prove_result",
    "rebuild_index",
    "run_query",
    "translate_kql",
    "update_index",
    "write_proofs",
]
