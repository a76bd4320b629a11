"""Writes Azure Monitor storage exports to Azurite exactly as diagnostic settings do.

Layout (reference azure.md section 3.2-3.3, from Microsoft's "resource-logs-blob-format"
and "activity-log" docs): one *append blob* per resource and hour, JSON lines (one record
per line, each ending in a newline), appended during the hour, in containers named
``insights-activity-logs`` and ``insights-logs-<category lower-cased>``::

    resourceId=/SUBSCRIPTIONS/<SUB>/RESOURCEGROUPS/<RG>/PROVIDERS/<RP>/<TYPE>/<NAME>/
        y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json

The records come from the real corpus in /work/shared/corpus (see its SOURCES.md):

* DataDog/azure-log-forwarding-orchestration @ b453a885cf9d5eeecff8b4ec7bdad3b450e9fd49,
  ``forwarder/internal/logs/fixtures/activedirectory/*.json`` and ``aks_logs.json``
  (Apache-2.0; real captures, pseudonymised): JSON lines; each line is taken as one record
  with its line end (CRLF or none) normalised to the single ``\\n`` Azure writes.
* open-telemetry/opentelemetry-collector-contrib @ f004dd3643f78e1d11b6843ca5d4494e08cbd577,
  ``pkg/translator/azurelogs/testdata/administrative/valid_1.json`` (Apache-2.0): an Event
  Hubs ``{"records": [...]}`` envelope; its records are written compactly, one per line,
  as the storage export has them.

Tests skip (with the reason) when the corpus is absent.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

CORPUS = Path("/work/shared/corpus")
DATADOG = CORPUS / "datadog_azure-log-forwarding-orchestration/forwarder/internal/logs/fixtures"
OTEL_ADMINISTRATIVE = (
    CORPUS / "otel_collector_contrib/pkg/translator/azurelogs/testdata/administrative/valid_1.json"
)
CORPUS_FILES = {
    "signinlogs": DATADOG / "activedirectory/sign_in_logs.json",
    "auditlogs": DATADOG / "activedirectory/audit_logs.json",
    "noninteractiveusersigninlogs":
        DATADOG / "activedirectory/non_interactive_user_sign_in_logs.json",
    "serviceprincipalsigninlogs": DATADOG / "activedirectory/service_principal_sign_in_logs.json",
    "managedidentitysigninlogs": DATADOG / "activedirectory/managed_identity_sign_in_logs.json",
    "microsoftgraphactivitylogs": DATADOG / "activedirectory/ms_graph_activity_logs.json",
    "riskyusers": DATADOG / "activedirectory/risky_users_logs.json",
    "userriskevents": DATADOG / "activedirectory/user_risk_event_logs.json",
    "kube-audit": DATADOG / "aks_logs.json",
}
SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
TENANT_RESOURCE = "/tenants/4d3bac44-0230-4732-9e70-cc00736f0a97/providers/Microsoft.aadiam"
AKS_RESOURCE = (f"/SUBSCRIPTIONS/{SUBSCRIPTION}/RESOURCEGROUPS/RG-K8S/PROVIDERS/"
                "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD")


def corpus_missing() -> str | None:
    """Why the corpus cannot be used, or None when every file is there."""
    for path in [*CORPUS_FILES.values(), OTEL_ADMINISTRATIVE]:
        if not path.is_file():
            return f"corpus file {path} is absent (see /work/shared/corpus/SOURCES.md)"
    return None


def json_lines_records(path: Path) -> list[bytes]:
    """The records of a JSON-lines corpus file, one per non-blank line, CR stripped."""
    return [line.strip() for line in path.read_bytes().split(b"\n") if line.strip()]


def envelope_records(path: Path) -> list[bytes]:
    """The records of a ``{"records": [...]}`` file, each as one compact JSON line."""
    return [orjson.dumps(record) for record in orjson.loads(path.read_bytes())["records"]]


def corpus_records() -> dict[str, list[bytes]]:
    """Category -> records; ``administrative`` holds the Activity Log records."""
    found = {category: json_lines_records(path) for category, path in CORPUS_FILES.items()}
    found["administrative"] = envelope_records(OTEL_ADMINISTRATIVE)
    return found


@dataclass(frozen=True)
class ExportBlob:
    """One PT1H.json blob: container and blob name."""

    container: str
    name: str

    @property
    def key(self) -> str:
        """``<container>/<name>``, as the collector names blobs."""
        return f"{self.container}/{self.name}"


def hour_path(hour: datetime) -> str:
    """The ``y=/m=/d=/h=/m=00`` part: one blob per hour, minute always 00."""
    return f"y={hour:%Y}/m={hour:%m}/d={hour:%d}/h={hour:%H}/m=00/PT1H.json"


def activity_blob(hour: datetime, subscription: str = SUBSCRIPTION) -> ExportBlob:
    """The Activity Log blob of a subscription and hour."""
    return ExportBlob("insights-activity-logs",
                      f"resourceId=/SUBSCRIPTIONS/{subscription.upper()}/{hour_path(hour)}")


def resource_blob(category: str, resource_id: str, hour: datetime) -> ExportBlob:
    """A resource-log blob: container per category, path per resource (upper-cased ids)."""
    resource = resource_id if resource_id.startswith("/tenants/") else resource_id.upper()
    return ExportBlob(f"insights-logs-{category.lower()}",
                      f"resourceId={resource}/{hour_path(hour)}")


def category_blob(category: str, hour: datetime) -> ExportBlob:
    """Where the records of a corpus category go."""
    if category == "administrative":
        return activity_blob(hour)
    if category == "kube-audit":
        return resource_blob(category, AKS_RESOURCE, hour)
    return resource_blob(category, TENANT_RESOURCE, hour)


class ExportWriter:
    """Appends to export blobs in a storage account the way Azure Monitor does."""

    def __init__(self, connection_string: str) -> None:
        """Write through the account of ``connection_string``."""
        self.service = BlobServiceClient.from_connection_string(connection_string)

    def clear(self) -> None:
        """Delete every ``insights-*`` container (a clean account for one test)."""
        for container in self.service.list_containers(name_starts_with="insights-"):
            self.service.delete_container(container.name)

    def append_raw(self, blob: ExportBlob, data: bytes) -> int:
        """Append ``data`` as one Append Block (creating container and blob when absent);
        returns the blob offset where ``data`` starts."""
        container = self.service.get_container_client(blob.container)
        with contextlib.suppress(ResourceExistsError):
            container.create_container()
        client = container.get_blob_client(blob.name)
        try:
            start = int(client.get_blob_properties().size)
        except ResourceNotFoundError:
            client.create_append_blob()
            start = 0
        if data:
            client.append_block(data)
        return start

    def append(self, blob: ExportBlob, records: list[bytes]) -> list[int]:
        """Append ``records`` as JSON lines; returns the offset of each record."""
        start = self.append_raw(blob, b"".join(record + b"\n" for record in records))
        offsets = []
        for record in records:
            offsets.append(start)
            start += len(record) + 1
        return offsets

    def all_content(self) -> dict[str, bytes]:
        """Every blob of every ``insights-*`` container, by key."""
        found = {}
        for container in self.service.list_containers(name_starts_with="insights-"):
            client = self.service.get_container_client(container.name)
            for item in client.list_blobs():
                found[f"{container.name}/{item.name}"] = client.get_blob_client(
                    item.name).download_blob().readall()
        return found
