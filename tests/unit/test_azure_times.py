"""Tests for auditseal.ingest.azure_times: every timestamp spelling seen in real Azure records.

The example strings are the ones found in the shared corpus (DataDog/azure-log-forwarding-
orchestration fixtures at b453a885, OTel collector-contrib azurelogs testdata at f004dd36,
panther-labs/panther-analysis rules at daa10c88); see /work/shared/corpus/SOURCES.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from auditseal.ingest.azure_times import parse_azure_time


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


PARSED = [
    # diagnostic-settings records (.NET "o" format: 7 fractional digits and Z)
    ("iso-7-digits-z", "2025-04-11T16:17:00.7397744Z", utc(2025, 4, 11, 16, 17, 0, 739774)),
    # AKS: Go writes 9 digits; truncated, not rounded (…959 ns stays in microsecond 154534)
    ("iso-9-digits-z", "2024-11-15T21:00:00.154534959Z", utc(2024, 11, 15, 21, 0, 0, 154534)),
    ("iso-3-digits-z", "2024-12-19T19:15:07.295Z", utc(2024, 12, 19, 19, 15, 7, 295000)),
    ("iso-no-fraction-z", "2024-11-11T18:59:51Z", utc(2024, 11, 11, 18, 59, 51)),
    ("iso-lower-z", "2024-11-11t18:59:51z", utc(2024, 11, 11, 18, 59, 51)),
    # Entra properties.createdDateTime: offset form
    ("iso-offset-utc", "2025-04-11T16:15:30.5431359+00:00", utc(2025, 4, 11, 16, 15, 30, 543135)),
    ("iso-offset-plus-2", "2025-04-11T18:15:30+02:00", utc(2025, 4, 11, 16, 15, 30)),
    ("iso-offset-minus-0530", "2025-04-11T10:45:30-05:30", utc(2025, 4, 11, 16, 15, 30)),
    ("iso-offset-no-colon", "2025-04-11T18:15:30+0200", utc(2025, 4, 11, 16, 15, 30)),
    # user_risk_event_logs.json activityDateTime: a one-digit hour
    ("iso-one-digit-hour", "2025-04-14T3:15:37.008Z", utc(2025, 4, 14, 3, 15, 37, 8000)),
    # panther test events: space separator, no zone
    ("iso-space-no-zone", "2025-01-15 09:30:25.123", utc(2025, 1, 15, 9, 30, 25, 123000)),
    ("iso-date-only", "2025-01-15", utc(2025, 1, 15)),
    # risky_users_logs.json / user_risk_event_logs.json: US locale with AM/PM
    ("us-locale-am", "4/14/2025 11:35:37 AM", utc(2025, 4, 14, 11, 35, 37)),
    ("us-locale-pm", "4/14/2025 1:35:37 PM", utc(2025, 4, 14, 13, 35, 37)),
    ("us-locale-midnight", "4/14/2025 12:05:00 AM", utc(2025, 4, 14, 0, 5, 0)),
    ("us-locale-noon", "4/14/2025 12:05:00 PM", utc(2025, 4, 14, 12, 5, 0)),
    # function_app_logs_with_usa_short_timestamp.json: month first, 24 h, no zone
    ("us-short-24h", "05/28/2025 01:15:14", utc(2025, 5, 28, 1, 15, 14)),
    ("surrounding-space", "  2024-11-11T18:59:51Z\r\n", utc(2024, 11, 11, 18, 59, 51)),
    ("net-json-date", "/Date(1744711621000)/", utc(2025, 4, 15, 10, 7, 1)),
    ("epoch-seconds", 1744711621, utc(2025, 4, 15, 10, 7, 1)),
    ("epoch-millis", 1744711621500, utc(2025, 4, 15, 10, 7, 1, 500000)),
    # ms_graph_activity_logs.json __UDI_RequiredFields_EventTime (.NET ticks) of the record
    # whose time is 2025-04-11T06:20:56.3154034Z
    ("dotnet-ticks", 638799492563154034, utc(2025, 4, 11, 6, 20, 56, 315403)),
    (
        "datetime-aware",
        datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        utc(2025, 1, 1),
    ),
    ("datetime-naive-is-utc", datetime(2025, 1, 1), utc(2025, 1, 1)),
]


@pytest.mark.parametrize(("text", "expected"), [p[1:] for p in PARSED], ids=[p[0] for p in PARSED])
def test_parses(text: object, expected: datetime) -> None:
    parsed = parse_azure_time(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


REJECTED = [
    ("empty", ""),
    ("words", "yesterday"),
    ("month-13", "2025-13-01T00:00:00Z"),
    ("day-32", "2025-01-32T00:00:00Z"),
    ("feb-30", "2025-02-30T00:00:00Z"),
    ("hour-25", "2025-01-01T25:00:00Z"),
    ("offset-hours-24", "2025-01-01T00:00:00+24:00"),
    ("us-13-pm", "4/14/2025 13:35:37 PM"),
    ("us-0-am", "4/14/2025 0:35:37 AM"),
    ("day-first-europe", "28/05/2025 01:15:14"),
    ("trailing-garbage", "2025-01-01T00:00:00Zjunk"),
    ("none", None),
    ("bool", True),
    ("list", ["2025-01-01T00:00:00Z"]),
    ("dict", {"value": "2025-01-01T00:00:00Z"}),
    ("nan", float("nan")),
    ("small-number", 42),
    ("year-9999-overflow-offset", "9999-12-31T23:59:59-23:59"),
    ("year-1-underflow-offset", "0001-01-01T00:00:00+01:00"),
]


@pytest.mark.parametrize("value", [r[1] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_rejects(value: object) -> None:
    assert parse_azure_time(value) is None
