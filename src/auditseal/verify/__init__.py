"""The auditor's verifier: re-derives a log from its entries and checks every claim.

It depends on ``auditseal.core`` and the standard library only, so an auditor can run it
without trusting (or even installing) the rest of auditseal's machinery.
"""

from auditseal.verify.fsck import verify_log
from auditseal.verify.report import Finding, VerifyReport
from auditseal.verify.source import DirectorySource, LogSource

__all__ = ["DirectorySource", "Finding", "LogSource", "VerifyReport", "verify_log"]
