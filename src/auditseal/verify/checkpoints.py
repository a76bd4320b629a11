"""Checking a log's checkpoints: the head and the history, signatures, order, agreement.

Part of the verifier (``fsck``): it decides which checkpoints are trusted and so which
tree sizes and roots the entries must reproduce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from auditseal.core.checkpoint import VerifiedCheckpoint, parse_unverified, verify_checkpoint
from auditseal.core.layout import HEAD_KEY, HISTORY_PREFIX, parse_history_key
from auditseal.core.notekeys import NoteVerifier
from auditseal.errors import FormatError, IntegrityError, ObjectNotFound
from auditseal.verify.report import VerifyReport
from auditseal.verify.source import LogSource


@dataclass
class Trusted:
    """The checkpoints that verified, by size, and the newest size."""

    checkpoints: dict[int, VerifiedCheckpoint]
    size: int


# ---------------------------------------------------------------------------


def check_checkpoints(
    source: LogSource,
    verifiers: Sequence[NoteVerifier],
    origin: str | None,
    head: bytes | None,
    report: VerifyReport,
) -> Trusted:
    checkpoints: dict[int, VerifiedCheckpoint] = {}
    for key in source.list(HISTORY_PREFIX):
        try:
            named = parse_history_key(key)
        except FormatError:
            report.warning("unexpected object", key, "not a checkpoint history name")
            continue
        checked = _open_checkpoint(source.read(key), key, verifiers, origin, report)
        if checked is None:
            continue
        if checked.size != named:
            report.error("misnamed", key, f"holds the checkpoint of size {checked.size}")
            continue
        checkpoints[named] = checked
        report.checkpoints_checked += 1
    if head is None:
        try:
            head = source.read(HEAD_KEY)
        except ObjectNotFound:
            report.error("missing", HEAD_KEY, "the log has no head checkpoint")
    newest = max(checkpoints, default=0)
    if head is not None:
        current = _open_checkpoint(head, HEAD_KEY, verifiers, origin, report)
        if current is not None:
            report.checkpoints_checked += 1
            _compare_head(current, checkpoints, newest, report)
            checkpoints.setdefault(current.size, current)
    return Trusted(checkpoints=checkpoints, size=max(checkpoints, default=0))


def _open_checkpoint(
    data: bytes, where: str, verifiers: Sequence[NoteVerifier], origin: str | None,
    report: VerifyReport,
) -> VerifiedCheckpoint | None:
    try:
        return verify_checkpoint(data, verifiers, origin=origin)
    except IntegrityError as exc:
        detail = exc.detail
        try:
            claimed = parse_unverified(data)
            detail = f"{detail} (claims origin {claimed.origin!r}, size {claimed.size})"
        except FormatError:
            pass
        report.error(exc.what, where, detail)
    except FormatError as exc:
        report.error("corrupt", where, str(exc))
    return None


def _compare_head(
    head: VerifiedCheckpoint, history: dict[int, VerifiedCheckpoint], newest: int,
    report: VerifyReport,
) -> None:
    if head.size < newest:
        report.error(
            "rolled back", HEAD_KEY,
            f"the head is the checkpoint of size {head.size}, but the log already "
            f"published size {newest}",
        )
    same = history.get(head.size)
    if same is not None and same.root_hash != head.root_hash:
        report.error(
            "forked", HEAD_KEY,
            f"size {head.size} with root {head.root_hash.hex()}, but the history holds "
            f"root {same.root_hash.hex()} for that size",
        )
    elif same is None and history:
        report.warning("not in history", HEAD_KEY, f"no history copy of size {head.size}")


