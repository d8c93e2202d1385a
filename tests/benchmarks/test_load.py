"""The load benchmark's accounting, without starting a site: percentiles, lost and duplicated uploads, the
summary line's exact shape, and distinct photo bytes."""

from __future__ import annotations

import hashlib

import pytest

from benchmarks.load import ItemRow, UploadRecord, account, face_photos, percentile, summary_line


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 95) == 95
    assert percentile(values, 50) == 50
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 95) == 0.0
    assert percentile([30, 10, 20], 100) == 30  # unsorted input


def test_lost_duplicated_and_failed_are_counted_from_records_and_rows():
    records = [
        UploadRecord("a", 201, "1", 100),  # done
        UploadRecord("b", 201, "2", 200),  # failed: counted as failed, not lost
        UploadRecord("c", 201, "3", 300),  # answered 201, never finished: lost
        UploadRecord("d", 201, "9", 400),  # answered 201, no such item: lost
        UploadRecord("e", 201, "5", 500),  # two items for the same bytes: one duplicate
        UploadRecord("f", 503, "", 600),  # refused by the server: a 5xx, not lost
    ]
    rows = [
        ItemRow("1", "a", "done"),
        ItemRow("2", "b", "failed"),
        ItemRow("3", "c", "running"),
        ItemRow("5", "e", "done"),
        ItemRow("6", "e", "done"),
    ]
    summary = account(records, rows, status_ms=[10, 20, 30], drain_seconds=12.34, status_codes=[200, 500])
    assert (summary.uploads, summary.items, summary.done, summary.failed) == (6, 5, 3, 1)
    assert summary.lost == 2 and summary.duplicated == 1
    assert summary.server_errors == 2 and summary.refused == 1
    assert summary.upload_p95_ms == 600 and summary.status_p95_ms == 30


def test_an_item_holding_other_bytes_than_the_upload_is_lost():
    summary = account([UploadRecord("a", 201, "1", 1)], [ItemRow("1", "other", "done")], [], 0)
    assert summary.lost == 1


def test_the_summary_line_is_the_last_line_the_issue_asks_for():
    records = [UploadRecord(str(n), 201, str(n), 80.4 + n) for n in range(3)]
    rows = [ItemRow(str(n), str(n), "done") for n in range(3)]
    line = summary_line(account(records, rows, [12.6], 41.26))
    assert line == (
        "uploads=3 items=3 done=3 failed=0 lost=0 duplicated=0 upload_p95_ms=82 status_p95_ms=13 "
        "drain_seconds=41.3"
    )


def test_the_photos_are_distinct_jpegs_of_the_same_size():
    pytest.importorskip("skimage")
    photos = face_photos(5, side=64)
    assert len({hashlib.sha256(photo).hexdigest() for photo in photos}) == 5
    assert all(photo.startswith(b"\xff\xd8") for photo in photos)
