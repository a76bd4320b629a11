"""What protects an Azure Blob log, and what falls short of a compliant set-up.

A log on Azure has two containers with opposite needs (``storage.azure_blob``):

* the **data container** holds every sealed object. It should carry a *locked* time-based
  retention policy at least as long as the records must be kept: an unlocked policy can be
  shortened or deleted by an administrator and is "meant for testing only"; the SEC
  17a-4(f) assessment covers locked policies (reference notes 1.1, 1.3). A legal hold also
  protects, but anyone allowed to clear it can lift it.
* the **head container** holds the one object that must move: the current checkpoint. Any
  WORM policy or legal hold there refuses its every update, so it must *not* be WORM; yet an
  unprotected head lets anyone with write access replace or delete it. Verifiers detect a
  rolled-back or forged head (signatures, and the write-once ``checkpoints/`` history in the
  data container keeps every published checkpoint), but the log stops being readable until
  it is repaired. Protect it otherwise: grant write access to the head container only to the
  writer's identity (RBAC scoped to that container), enable blob soft delete and versioning
  on its account, and put a CanNotDelete resource lock on the account.

The data plane shows whether a container has a policy or hold (reference notes 1.7); only
the management plane (``management``) shows the policy's state and length, so without
management credentials those findings say "unverified".
``assess`` is pure: it turns the collected facts into findings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient

from auditseal.azure.management import ContainerImmutability, ContainerPolicy, LegalHoldState
from auditseal.storage.azure_errors import translate

CRITICAL, WARNING, INFO = "critical", "warning", "info"


@dataclass(frozen=True)
class ContainerFacts:
    """What is known about one container.

    Attributes:
        name: the container.
        role: "data" (sealed objects) or "head" (the moving checkpoint).
        has_immutability_policy: data plane ``x-ms-has-immutability-policy``.
        has_legal_hold: data plane ``x-ms-has-legal-hold``.
        version_level_worm: data plane ``x-ms-immutable-storage-with-versioning-enabled``.
        policy: the time-based policy from the management plane, None if not read.
        legal_hold: the legal-hold tags from the management plane, None if not read.
    """

    name: str
    role: str
    has_immutability_policy: bool
    has_legal_hold: bool
    version_level_worm: bool
    policy: ContainerPolicy | None = None
    legal_hold: LegalHoldState | None = None

    @property
    def worm(self) -> bool:
        """Whether anything WORM applies to the container's blobs."""
        return self.has_immutability_policy or self.has_legal_hold


@dataclass(frozen=True)
class BlobFacts:
    """A sampled blob's own (version-level) protection."""

    name: str
    policy_until: datetime | None
    policy_mode: str
    legal_hold: bool


@dataclass(frozen=True)
class Finding:
    """One thing that falls short (or is worth knowing), with what to do about it."""

    severity: str
    code: str
    message: str


@dataclass(frozen=True)
class AzureStatus:
    """The containers of a log, sampled blobs, and the findings."""

    data: ContainerFacts
    head: ContainerFacts
    samples: tuple[BlobFacts, ...]
    findings: tuple[Finding, ...]

    @property
    def compliant(self) -> bool:
        """No critical finding."""
        return not any(f.severity == CRITICAL for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        def container(facts: ContainerFacts) -> dict[str, Any]:
            out = asdict(facts)
            out["legal_hold"] = list(facts.legal_hold.tags) if facts.legal_hold else None
            return out

        return {
            "compliant": self.compliant,
            "data_container": container(self.data),
            "head_container": container(self.head),
            "sampled_blobs": [
                {**asdict(b), "policy_until": b.policy_until.isoformat() if b.policy_until
                 else None} for b in self.samples],
            "findings": [asdict(f) for f in self.findings],
        }


def read_container(client: ContainerClient, role: str,
                   manager: ContainerImmutability | None = None) -> ContainerFacts:
    """Collect a container's facts from the data plane and, given a manager, from ARM."""
    name = str(client.container_name)
    try:
        props = client.get_container_properties()
    except AzureError as exc:
        raise translate(exc, name) from exc
    policy = manager.get_policy(name) if manager else None
    hold = manager.get_legal_hold(name) if manager else None
    return ContainerFacts(
        name=name, role=role,
        has_immutability_policy=bool(props.has_immutability_policy),
        has_legal_hold=bool(props.has_legal_hold),
        version_level_worm=bool(props.immutable_storage_with_versioning_enabled),
        policy=policy, legal_hold=hold)


def sample_blobs(client: ContainerClient, prefix: str, count: int = 5) -> tuple[BlobFacts, ...]:
    """Per-blob protection of up to ``count`` sealed blobs under ``prefix``."""
    start = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    found: list[BlobFacts] = []
    try:
        for name in client.list_blob_names(name_starts_with=start + "tile/"):
            props = client.get_blob_client(name).get_blob_properties()
            policy = props.immutability_policy
            found.append(BlobFacts(
                name=name, policy_until=getattr(policy, "expiry_time", None),
                policy_mode=str(getattr(policy, "policy_mode", "") or ""),
                legal_hold=bool(props.has_legal_hold)))
            if len(found) >= count:
                break
    except AzureError as exc:
        raise translate(exc, start or str(client.container_name)) from exc
    return tuple(found)


def assess(data: ContainerFacts, head: ContainerFacts, samples: tuple[BlobFacts, ...], *,
           min_retention_days: int | None = None, now: datetime | None = None
           ) -> tuple[Finding, ...]:
    """The findings for a log's containers (pure: no I/O)."""
    findings = list(_data_findings(data, samples, min_retention_days, now))
    findings.extend(_head_findings(data, head))
    return tuple(findings)


def _data_findings(data: ContainerFacts, samples: tuple[BlobFacts, ...],
                   min_days: int | None, now: datetime | None) -> list[Finding]:
    out: list[Finding] = []
    per_blob = [b for b in samples if b.legal_hold or (
        b.policy_until is not None and (now is None or b.policy_until > now))]
    if not data.worm and not per_blob:
        return [Finding(CRITICAL, "no-policy",
                        f"data container {data.name} has no immutability policy and no legal "
                        "hold: anyone with write access can overwrite or delete sealed objects; "
                        "set one with 'auditseal azure retention set --days N', then lock it")]
    if not data.worm:
        out.append(Finding(WARNING, "per-blob-only",
                           f"data container {data.name} has no container policy; only "
                           f"{len(per_blob)} of {len(samples)} sampled blobs carry their own "
                           "policy or hold, and new blobs are protected only if the writer "
                           "asks for it"))
    if data.has_legal_hold and not data.has_immutability_policy:
        out.append(Finding(INFO, "legal-hold-only",
                           f"data container {data.name} is protected by a legal hold only: it "
                           "lasts until someone with clearLegalHold permission lifts it"))
    policy = data.policy
    if policy is None:
        if data.has_immutability_policy:
            out.append(Finding(WARNING, "policy-unverified",
                               f"data container {data.name} has a retention policy, but its "
                               "state and length were not read: give --subscription, "
                               "--resource-group and --account (management credentials)"))
        return out
    if policy.exists and not policy.locked:
        out.append(Finding(CRITICAL, "policy-unlocked",
                           f"the retention policy of {data.name} ({policy.days} days) is "
                           "Unlocked: an administrator can shorten or delete it, so it is not "
                           "compliant (SEC 17a-4(f) requires a locked policy); lock it with "
                           "'auditseal azure retention lock --yes-lock-irreversibly'"))
    if min_days is not None and policy.exists and policy.days < min_days:
        out.append(Finding(CRITICAL, "retention-too-short",
                           f"the retention policy of {data.name} keeps blobs {policy.days} days, "
                           f"less than the required {min_days}"
                           + ("; extend it with 'auditseal azure retention extend'"
                              if policy.locked else "")))
    if policy.locked and policy.extensions is not None and policy.extensions >= 4:
        out.append(Finding(WARNING, "few-extensions-left",
                           f"the policy of {data.name} was extended {policy.extensions} times; "
                           "Azure allows 5 extensions per container"))
    return out


def _head_findings(data: ContainerFacts, head: ContainerFacts) -> list[Finding]:
    if head.name == data.name:
        return [Finding(CRITICAL if data.worm else WARNING, "head-in-data-container",
                        f"the head (checkpoint) lives in the data container {data.name}: a "
                        "WORM policy there refuses its every update; give it its own container "
                        "(azblob://...?head=CONTAINER)")]
    if head.worm:
        return [Finding(CRITICAL, "head-worm",
                        f"head container {head.name} has an immutability policy or legal hold: "
                        "the checkpoint must move, and WORM refuses every update; remove it "
                        "(a locked policy cannot be removed: move the head to another "
                        "container)")]
    return [Finding(WARNING, "head-unprotected",
                    f"head container {head.name} is not WORM (as it must be, since the "
                    "checkpoint moves) and nothing here shows other protection: anyone with "
                    "write access can replace or delete the current checkpoint. Verifiers "
                    "detect a rolled-back or forged head, and every checkpoint stays in the "
                    "write-once history, but the log is unreadable until repaired. Grant write "
                    "access to this container only to the writer's identity, enable soft "
                    "delete and versioning on the account, and put a CanNotDelete lock on it")]


def collect_status(data: ContainerClient, head: ContainerClient, prefix: str, *,
                   manager: ContainerImmutability | None = None,
                   min_retention_days: int | None = None, sample: int = 5,
                   now: datetime | None = None) -> AzureStatus:
    """Read both containers (and ``sample`` sealed blobs) and assess them."""
    data_facts = read_container(data, "data", manager)
    # ``url`` is ENDPOINT/CONTAINER: the head may live in another account (head_account=),
    # which the data account's management client cannot read.
    same_account = head.url.rstrip("/").rsplit("/", 1)[0] == data.url.rstrip("/").rsplit("/", 1)[0]
    head_facts = read_container(head, "head", manager if same_account
                                and head.container_name != data.container_name else None)
    if not same_account:
        head_facts = dataclasses.replace(head_facts, name=f"{head.account_name}/{head_facts.name}")
    elif head_facts.name == data_facts.name:
        head_facts = ContainerFacts(**{**data_facts.__dict__, "role": "head"})
    samples = sample_blobs(data, prefix, sample)
    findings = assess(data_facts, head_facts, samples, min_retention_days=min_retention_days,
                      now=now)
    return AzureStatus(data_facts, head_facts, samples, findings)
