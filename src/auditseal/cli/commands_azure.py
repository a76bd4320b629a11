"""``auditseal azure ...``: see and set the immutability of an Azure Blob log.

* ``status``: what protects the data and head containers, and what falls short
  (exit 1 when a finding is critical);
* ``retention set|extend|lock``: the data container's time-based retention policy
  (locking is irreversible and needs ``--yes-lock-irreversibly``);
* ``legal-hold set|clear --tag T``: container legal-hold tags;
* ``blob-hold set|clear KEY``: one sealed object's own legal hold (data plane).

Management calls use ``DefaultAzureCredential`` (or ``AUDITSEAL_AZURE_ARM_TOKEN``) against
``--arm-endpoint`` / ``AUDITSEAL_AZURE_ARM_ENDPOINT`` (default: the public cloud). The Azure
modules are imported when a command runs, so other commands never load the Azure SDK.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from auditseal.cli import exitcodes
from auditseal.cli.output import print_json
from auditseal.errors import ConfigError
from auditseal.log.location import resolve

if TYPE_CHECKING:
    from auditseal.azure.management import ContainerImmutability, ContainerPolicy
    from auditseal.storage.azure_location import AzureBlobLocation

SUBSCRIPTION_ENV = "AUDITSEAL_AZURE_SUBSCRIPTION_ID"
RESOURCE_GROUP_ENV = "AUDITSEAL_AZURE_RESOURCE_GROUP"


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``azure`` and its subcommands."""
    mgmt = argparse.ArgumentParser(add_help=False)
    mgmt.add_argument("--subscription", default=None,
                      help=f"subscription id (default: ${SUBSCRIPTION_ENV})")
    mgmt.add_argument("--resource-group", default=None,
                      help=f"the storage account's resource group (default: ${RESOURCE_GROUP_ENV})")
    mgmt.add_argument("--account", default=None,
                      help="storage account (default: the log's account)")
    mgmt.add_argument("--arm-endpoint", default=None,
                      help="Azure Resource Manager URL (default: $AUDITSEAL_AZURE_ARM_ENDPOINT or "
                      "the public cloud)")
    mgmt.add_argument("--container", default=None,
                      help="container to act on (default: the log's data container)")
    both = [*parents, mgmt]

    azure = commands.add_parser("azure", help="immutability of an Azure Blob log")
    sub = azure.add_subparsers(dest="azure_command", required=True, metavar="COMMAND")

    status = sub.add_parser("status", parents=both,
                            help="what protects the log's containers; exit 1 on a critical gap")
    status.add_argument("--min-retention-days", type=int, default=None,
                        help="flag a retention policy shorter than this")
    status.add_argument("--sample", type=int, default=5, help="sealed blobs to inspect")
    status.set_defaults(handler=run_status)

    retention = sub.add_parser("retention", help="the container's time-based retention policy")
    actions = retention.add_subparsers(dest="retention_action", required=True, metavar="ACTION")
    for name, text in (("set", "create or change an unlocked policy"),
                       ("extend", "lengthen a locked policy (at most 5 times)")):
        action = actions.add_parser(name, parents=both, help=text)
        action.add_argument("--days", type=int, required=True, help="retention in days")
        if name == "set":
            action.add_argument("--allow-protected-append-writes", action="store_true",
                                help="let append blobs grow under the policy")
        action.set_defaults(handler=run_retention)
    lock = actions.add_parser("lock", parents=both, help="lock the policy (IRREVERSIBLE)")
    lock.add_argument("--yes-lock-irreversibly", action="store_true",
                      help="confirm: a locked policy can never be shortened or removed, and the "
                      "container cannot be deleted until every blob has expired")
    lock.set_defaults(handler=run_retention, retention_action="lock")

    hold = sub.add_parser("legal-hold", help="container legal-hold tags")
    hold_actions = hold.add_subparsers(dest="hold_action", required=True, metavar="ACTION")
    for name in ("set", "clear"):
        action = hold_actions.add_parser(name, parents=both, help=f"{name} legal-hold tags")
        action.add_argument("--tag", action="append", required=True,
                            help="3-23 letters or digits; repeatable")
        action.set_defaults(handler=run_legal_hold)

    blob = sub.add_parser("blob-hold", help="one sealed object's own legal hold")
    blob_actions = blob.add_subparsers(dest="blob_action", required=True, metavar="ACTION")
    for name in ("set", "clear"):
        action = blob_actions.add_parser(name, parents=parents, help=f"{name} the blob's hold")
        action.add_argument("key", help="object key, e.g. tile/entries/000")
        action.set_defaults(handler=run_blob_hold)


def run_status(args: argparse.Namespace) -> int:
    """Print what protects the log's containers and the findings."""
    from auditseal.azure.status import collect_status  # loads the Azure SDK
    from auditseal.azure.tamper import container_client_of, prefix_of

    location = _azure_location(args.log)
    manager = _manager(args, location, required=False)
    store = location.object_store()
    status = collect_status(
        container_client_of(store), container_client_of(location.head_store()),
        prefix_of(store), manager=manager, min_retention_days=args.min_retention_days,
        sample=args.sample)
    if args.json:
        print_json(status.to_json())
    else:
        for facts in (status.data, status.head):
            policy = facts.policy
            shown = "unknown (no management access)" if policy is None else (
                f"{policy.state}, {policy.days} days" if policy.exists else "none")
            tags = "" if facts.legal_hold is None else f"; hold tags {list(facts.legal_hold.tags)}"
            print(f"{facts.role} container {facts.name}: immutability policy "
                  f"{'yes' if facts.has_immutability_policy else 'no'} ({shown}); legal hold "
                  f"{'yes' if facts.has_legal_hold else 'no'}{tags}; version-level WORM "
                  f"{'yes' if facts.version_level_worm else 'no'}")
        for blob in status.samples:
            until = blob.policy_until.isoformat() if blob.policy_until else "none"
            print(f"  blob {blob.name}: policy {blob.policy_mode or '-'} until {until}; "
                  f"legal hold {'yes' if blob.legal_hold else 'no'}")
        for finding in status.findings:
            print(f"{finding.severity}: {finding.message}")
        print("compliant set-up" if status.compliant else "NOT a compliant set-up")
    return exitcodes.OK if status.compliant else exitcodes.INTEGRITY


def run_retention(args: argparse.Namespace) -> int:
    """Set, extend or lock the container's time-based retention policy."""
    if args.retention_action == "lock" and not args.yes_lock_irreversibly:
        raise ConfigError("locking a retention policy is irreversible; repeat with "
                          "--yes-lock-irreversibly if that is what you want")
    location = _azure_location(args.log)
    manager = _manager(args, location, required=True)
    assert manager is not None
    container = args.container or location.url.container
    if args.retention_action == "set":
        policy = manager.set_policy(container, args.days,
                                    allow_protected_append_writes=args.allow_protected_append_writes)
    elif args.retention_action == "extend":
        policy = manager.extend_policy(container, args.days)
    else:
        policy = manager.lock_policy(container)
    _print_policy(args, container, policy)
    return exitcodes.OK


def run_legal_hold(args: argparse.Namespace) -> int:
    """Set or clear container legal-hold tags."""
    location = _azure_location(args.log)
    manager = _manager(args, location, required=True)
    assert manager is not None
    container = args.container or location.url.container
    change = manager.set_legal_hold if args.hold_action == "set" else manager.clear_legal_hold
    hold = change(container, list(args.tag))
    if args.json:
        print_json({"container": container, "legal_hold_tags": list(hold.tags)})
    else:
        print(f"container {container}: legal hold tags {list(hold.tags) or 'none'}")
    return exitcodes.OK


def run_blob_hold(args: argparse.Namespace) -> int:
    """Set or clear one sealed object's legal hold."""
    from auditseal.azure.management import set_blob_legal_hold
    from auditseal.azure.tamper import container_client_of, prefix_of
    from auditseal.storage.base import validate_key

    location = _azure_location(args.log)
    store = location.object_store()
    prefix = prefix_of(store)
    name = f"{prefix}/{validate_key(args.key)}" if prefix else validate_key(args.key)
    held = set_blob_legal_hold(container_client_of(store), name, args.blob_action == "set")
    if args.json:
        print_json({"blob": name, "legal_hold": held})
    else:
        print(f"blob {name}: legal hold {'set' if held else 'cleared'}")
    return exitcodes.OK


def _azure_location(spec: str) -> AzureBlobLocation:
    remote = resolve(spec).remote
    if remote is None or not hasattr(remote, "url"):
        raise ConfigError(f"--log {spec}: the azure commands need an azblob:// log")
    location: AzureBlobLocation = remote  # type: ignore[assignment]
    return location


def _manager(args: argparse.Namespace, location: AzureBlobLocation, *, required: bool
             ) -> ContainerImmutability | None:
    from auditseal.azure.management import (  # loads the Azure SDK
        ContainerImmutability,
        management_client,
    )

    subscription = args.subscription or os.environ.get(SUBSCRIPTION_ENV)
    group = args.resource_group or os.environ.get(RESOURCE_GROUP_ENV)
    if not (subscription and group):
        if required:
            raise ConfigError("management calls need --subscription and --resource-group "
                              f"(or ${SUBSCRIPTION_ENV} and ${RESOURCE_GROUP_ENV})")
        return None
    client = management_client(subscription, endpoint=args.arm_endpoint)
    return ContainerImmutability(client, group, args.account or location.account)


def _print_policy(args: argparse.Namespace, container: str, policy: ContainerPolicy) -> None:
    if args.json:
        print_json({"container": container, "days": policy.days, "state": policy.state,
                    "etag": policy.etag,
                    "allow_protected_append_writes": policy.allow_protected_append_writes})
        return
    print(f"container {container}: retention policy {policy.state}, {policy.days} days"
          + (", protected append writes allowed" if policy.allow_protected_append_writes else ""))
