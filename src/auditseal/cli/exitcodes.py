"""Exit codes and the one place where errors become human text.

=====  =========================================================================
code   meaning
=====  =========================================================================
0      success
1      verification failed: the log or proof does not hold (integrity)
2      usage error (bad arguments)
3      some input records were rejected (the others were sealed)
4      storage failed (retry may help)
5      configuration or key problem
6      the log is locked by another writer
7      a file given to us is malformed
8      overloaded (retry later)
=====  =========================================================================
"""

from __future__ import annotations

from auditseal.errors import (
    AuditsealError,
    ConfigError,
    FormatError,
    IngestError,
    IntegrityError,
    LogLocked,
    OverloadError,
    StorageError,
)

OK = 0
INTEGRITY = 1
USAGE = 2
REJECTED = 3
STORAGE = 4
CONFIG = 5
LOCKED = 6
MALFORMED = 7
OVERLOAD = 8

_BY_FAMILY: list[tuple[type[AuditsealError], int]] = [
    (IntegrityError, INTEGRITY),
    (LogLocked, LOCKED),
    (StorageError, STORAGE),
    (ConfigError, CONFIG),
    (FormatError, MALFORMED),
    (IngestError, REJECTED),
    (OverloadError, OVERLOAD),
]


def exit_code_for(error: AuditsealError) -> int:
    """The exit code of an error's family."""
    for family, code in _BY_FAMILY:
        if isinstance(error, family):
            return code
    return STORAGE
