"""Smoke test of the fuzz run: a few examples end with its summary line and no finding."""

from __future__ import annotations

import re

from benchmarks import fuzz_media


def test_a_short_fuzz_run_reports_no_finding(capsys):
    assert fuzz_media.main(["--examples", "10"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.match(r"^fuzz examples=10 findings=0 slowest_ms=\d+$", last), last


def test_mutations_overwrite_insert_delete_and_cut():
    data = bytes(range(10))
    assert fuzz_media.mutate(data, [(0, 2, 1, b"\xff")])[:4] == b"\x00\x01\xff\x03"
    assert len(fuzz_media.mutate(data, [(1, 0, 1, b"ab")])) == 12
    assert len(fuzz_media.mutate(data, [(2, 0, 3, b"")])) == 7
    assert fuzz_media.mutate(data, [(3, 4, 1, b"")]) == bytes(range(4))
