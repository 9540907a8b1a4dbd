"""The streaming personal-data scan: a uniform reservoir, exhaustive counts equal to ``scan_frame``'s, French CSV
dialects and Parquet read as a stream, the readers' errors kept, progress logged on a fake clock."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from charter_guardrails.checks.privacy import progress as progress_module
from charter_guardrails.checks.privacy import sampler, scanner, stream, stream_read
from charter_guardrails.checks.privacy.progress import ReadProgress
from charter_guardrails.checks.privacy.report import ColumnScan, ScanOptions, ScanReport, sample_size
from charter_guardrails.checks.privacy.sampler import DistinctCounts, Reservoir
from charter_guardrails.checks.privacy.scanner import scan_frame
from charter_guardrails.checks.privacy.stream import scan_file
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.errors import DatasetReadError
from charter_guardrails.core.policy_models import CsvDialect
from charter_guardrails.readers.files import MAX_CELL_CHARS, read_any, read_csv

#: Chi-square critical value for 9 degrees of freedom at p = 0.001.
CHI2_9_P001 = 27.88
FALLBACK = "read again with the pandas parser"


def _batches(rows: int, size: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, rows, size):
        yield pa.record_batch({"i": pa.array(np.arange(start, min(start + size, rows)))})


def _chi2_deciles(positions: np.ndarray, rows: int) -> float:
    observed = np.bincount(positions * 10 // rows, minlength=10)
    expected = len(positions) / 10
    return float(((observed - expected) ** 2 / expected).sum())


def test_reservoir_is_a_uniform_sample_of_the_whole_stream() -> None:
    rows, size = 10_000, sample_size(0.01, 0.99)
    drawn = []
    for seed in range(40):
        reservoir = Reservoir(size, seed)
        for batch in _batches(rows, 1_000):
            reservoir.add(batch)
        assert reservoir.table is not None
        sample = reservoir.table.column("i").to_numpy()
        assert len(sample) == size == len(set(sample.tolist()))
        assert reservoir.rows_seen == rows
        assert list(sample) == sorted(sample)  # kept in the order of the stream
        drawn.append(sample)
    positions = np.concatenate(drawn)
    # every tenth of the file is drawn as often (40 x 459 draws, 1,836 expected per tenth)
    assert _chi2_deciles(positions, rows) < CHI2_9_P001
    # the same test refuses a sample of the head of the file, and one of the last rows
    assert _chi2_deciles(np.tile(np.arange(size), 40), rows) > CHI2_9_P001
    assert _chi2_deciles(np.tile(np.arange(rows - size, rows), 40), rows) > CHI2_9_P001
    # each row is drawn with probability size / rows: as often in the first batch as in the last
    first, last = (positions < 1_000).sum(), (positions >= rows - 1_000).sum()
    assert abs(first - last) < 0.15 * (first + last) / 2, (first, last)


def test_reservoir_does_not_depend_on_the_batches_and_follows_its_seed() -> None:
    def sample(batch: int, seed: int) -> list[int]:
        reservoir = Reservoir(459, seed)
        for b in _batches(50_000, batch):
            reservoir.add(b)
        assert reservoir.table is not None
        return reservoir.table.column("i").to_pylist()

    assert sample(1_000, 7) == sample(777, 7) == sample(50_000, 7)
    assert sample(1_000, 7) != sample(1_000, 8)
    small = Reservoir(459, 1)
    for b in _batches(100, 30):
        small.add(b)
    assert small.table is not None
    assert small.table.column("i").to_pylist() == list(range(100))  # fewer rows than the sample: all of them


def test_distinct_counts_merge_batches_in_order_of_first_appearance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampler, "MERGE_FROM", 3)  # merge often
    values = ["b", "a", None, "b", "  ", "c", "a", "b", "d", "c", "", "a"]
    counts = DistinctCounts()
    for start in range(0, len(values), 2):
        counts.add(pa.record_batch({"v": pa.array(values[start : start + 2], pa.string())}))
    # a and b: 3 rows each, in order of first appearance (b first); blank values are not values
    distinct, rows, present = counts.column(0)
    assert (list(distinct), list(rows), present) == (["b", "a", "c", "d"], [3, 3, 2, 1], 9)
    assert (distinct[1], distinct[-1], distinct[1:3], rows[:2]) == ("a", "d", ["a", "c"], [3, 3])
    assert counts.rows == len(values)


def _people(rows: int, seed: int = 5) -> pd.DataFrame:
    rng = random.Random(seed)
    names = ["Jean Dupont", "Marie Curie", "Émile Zola", "Léa Martin", "Hélène Boucher", "Noël Garçon"]
    phones = [f"06 {rng.randint(10, 99)} {rng.randint(10, 99)} 34 56" for _ in range(rows)]
    return pd.DataFrame(
        {
            "id": [f"D{i:05d}" for i in range(rows)],
            "nom": [rng.choice(names) + f" {i % 40}" if i % 3 else rng.choice(names) for i in range(rows)],
            "téléphone": [p if i % 4 else None for i, p in enumerate(phones)],
            "courriel": [f"{rng.choice(['jean', 'marie', 'lea'])}.{i % 50}@exemple.fr" for i in range(rows)],
            "montant": [f"{rng.random() * 100:.2f}".replace(".", ",") for _ in range(rows)],
            "message": [
                f"Bonjour ; le lampadaire {i} est en panne, appelez-moi au {phones[i]}" if i % 7 == 0 else "Merci"
                for i in range(rows)
            ],
            "vide": [None] * rows,
        }
    )


def _same_columns(streamed: ScanReport, framed: ScanReport) -> None:
    def entity(f: Any) -> tuple[Any, ...]:
        return (f.entity_type, f.count, round(f.share, 9), round(f.mean_score, 9), f.max_score, f.masked_examples)

    def column(c: ColumnScan) -> tuple[Any, ...]:
        return (
            c.name,
            c.kind,
            c.rows,
            c.non_null,
            c.distinct,
            [entity(f) for f in c.findings],
            [entity(f) for f in c.suspects],
        )

    assert [column(c) for c in streamed.columns] == [column(c) for c in framed.columns]
    assert (streamed.rows, streamed.scanned_rows, streamed.mode) == (framed.rows, framed.scanned_rows, framed.mode)


def test_streaming_exhaustive_scan_equals_scan_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(stream_read, "BLOCK_BYTES", 8_192)  # many batches
    monkeypatch.setattr(sampler, "MERGE_FROM", 100)  # and many merges of their counts
    monkeypatch.setattr(sampler, "PYTHON_SLICE", 64)
    path = tmp_path / "export.csv"
    _people(1_500).to_csv(path, sep=";", index=False, encoding="cp1252")
    options = ScanOptions(mode="exhaustive", n_process=1)
    frame, _ = read_any(path)
    framed = scan_frame(frame, options)
    monkeypatch.setattr(scanner, "ANALYSE_SLICE", 97)  # the streamed scan analyses slices of distinct values
    streamed = scan_file(path, options)
    assert FALLBACK not in caplog.text  # pyarrow read it
    _same_columns(streamed, framed)
    found = {c.name: c.entity_types() for c in streamed.columns}
    assert {"FR_PHONE"} <= found["téléphone"]
    assert {"EMAIL_ADDRESS"} <= found["courriel"]
    assert streamed.column("téléphone").finding("FR_PHONE").count == 1_125  # type: ignore[union-attr]
    assert streamed.column("vide").kind == "empty"
    assert streamed.guarantee == framed.guarantee
    # a file larger than a pass's budget is read once per group of columns: the same report
    monkeypatch.setattr(stream, "EXHAUSTIVE_PASS_BYTES", path.stat().st_size // 3 + 1)
    _same_columns(scan_file(path, options), framed)
    assert "7 columns read in 3 passes" in caplog.text


@pytest.mark.parametrize(
    ("name", "encoding", "bom"),
    [("latin1.csv", "latin-1", False), ("cp1252.csv", "cp1252", False), ("bom.csv", "utf-8", True)],
)
def test_french_dialects_stream_as_the_readers_read_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, encoding: str, bom: bool
) -> None:
    caplog.set_level(logging.INFO)
    frame = _people(300)
    frame.loc[3, "message"] = "Sur deux lignes ;\nrappelez « vite » le 07 98 76 54 32"  # quoted: ; and a newline
    path = tmp_path / name
    text = frame.to_csv(sep=";", index=False)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding, errors="replace"))
    read, dialect = read_any(path)
    assert dialect is not None
    assert (dialect.separator, dialect.decimal) == (";", ",")
    options = ScanOptions(mode="exhaustive", n_process=1)
    streamed = scan_file(path, options, dialect=dialect.as_policy_dialect())
    assert FALLBACK not in caplog.text
    assert [c.name for c in streamed.columns] == list(frame.columns)  # no BOM in the first name
    assert streamed.rows == 300
    _same_columns(streamed, scan_frame(read, options))
    assert "FR_PHONE" in streamed.column("message").entity_types()


def test_a_short_last_row_is_read_by_the_pandas_parser_as_the_readers_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = tmp_path / "truncated.csv"
    path.write_text("nom;tel;ville\nJean Dupont;06 12 34 56 78;Lyon\nMarie Curie;07 98", encoding="utf-8")
    options = ScanOptions(mode="exhaustive", n_process=1)
    streamed = scan_file(path, options, dialect=CsvDialect())
    assert FALLBACK in caplog.text
    assert "06 12" not in caplog.text  # pyarrow's message quotes the row: never logged
    _same_columns(streamed, scan_frame(read_csv(path, CsvDialect()), options))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("ragged.csv", "a;b\n1;2\n3;4;5\n6;7\n"),
        ("unterminated.csv", 'a;b\n1;2\n"3;4\n5;6\n'),
        ("comma.csv", "a,b,c\n1,2,3\n"),
        ("latin1.csv", "nom;ville\nJosé;Orléans\n".encode("latin-1")),
        ("blank.csv", "\n\n\n"),
        ("huge_cell.csv", "a;b\n" + "x" * (MAX_CELL_CHARS + 5) + ";1\n"),
    ],
)
def test_bad_input_keeps_the_readers_errors(tmp_path: Path, name: str, content: str | bytes) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetReadError) as expected:
        read_csv(path, CsvDialect())
    with pytest.raises(DatasetReadError) as streamed:
        scan_file(path, ScanOptions(mode="sampling"), dialect=CsvDialect())
    assert (streamed.value.kind, str(streamed.value)) == (expected.value.kind, str(expected.value))


def test_parquet_samples_row_groups_and_scans_exhaustively_like_scan_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = 60_000
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "telephone": [f"06 {i % 90 + 10} {i % 89 + 10} 34 56" if i % 50 == 0 else "" for i in range(rows)],
            "quantite": rng.integers(0, 1000, rows),
            "categorie": rng.choice(["voirie", "proprete", "eclairage"], rows),
        },
        index=pd.Index([f"k{i}" for i in range(rows)], name="cle"),  # stored, but not a column of the table
    )
    path = tmp_path / "requests.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=50)  # 1,200 row groups
    sampled = scan_file(path, ScanOptions(mode="sampling"))
    n = sample_size(0.01, 0.99)
    assert (sampled.rows, sampled.scanned_rows) == (rows, n)
    assert [c.name for c in sampled.columns] == ["telephone", "quantite", "categorie"]
    groups = int(sampled.guarantee.split("only the ")[1].split(" of ")[0])
    assert 300 < groups < 500, sampled.guarantee  # 1,200 x (1 - (1 - 1/1,200)^459): about 380 expected
    assert "of 1200 row groups holding a drawn row were read" in sampled.guarantee
    phone = sampled.column("telephone").finding("FR_PHONE")
    assert phone is not None
    assert 0 < phone.count < n / 20  # 2 % of the rows
    exhaustive = ScanOptions(mode="exhaustive", n_process=1)
    streamed = scan_file(path, exhaustive)
    framed = scan_frame(pd.read_parquet(path), exhaustive)
    assert streamed.column("telephone").finding("FR_PHONE").count == rows // 50  # type: ignore[union-attr]
    _same_columns(streamed, framed)
    monkeypatch.setattr(stream, "EXHAUSTIVE_PASS_BYTES", 1_000)  # one pass per column, the file's order kept
    _same_columns(scan_file(path, exhaustive), framed)


def test_progress_logs_counts_every_ten_seconds_of_a_fake_clock(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=progress_module.__name__)
    now = [100.0]
    progress = ReadProgress("demandes.csv", total_bytes=50 << 20, clock=lambda: now[0])
    progress.columns = 7
    for step in range(1, 8):  # 4 s per batch: logged at 12 s and 24 s
        now[0] += 4
        progress.advance(1_000, step * (5 << 20))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "personal data scan of demandes.csv: read 3000 rows, 15 MiB of 50 MiB, 7 columns, 12 s",
        "personal data scan of demandes.csv: read 6000 rows, 30 MiB of 50 MiB, 7 columns, 24 s",
    ]
    assert progress.lines == 2


def test_progress_is_a_bar_on_a_terminal_and_never_logs_there(caplog: pytest.LogCaptureFixture) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    caplog.set_level(logging.INFO, logger=progress_module.__name__)
    now, terminal = [0.0], Terminal()
    progress = ReadProgress("demandes.csv", total_bytes=4 << 20, clock=lambda: now[0], stream=terminal)
    progress.columns = 3
    for step in range(1, 5):
        now[0] += 30
        progress.advance(500, step << 20)
    assert (progress.rows, progress.bytes) == (2_000, 4 << 20)
    progress.close()
    shown = terminal.getvalue()
    assert "reading demandes.csv" in shown
    assert "4.00M" in shown  # the bar counts the file's bytes
    assert caplog.records == []  # two minutes of a fake clock, and not a log line
    quiet = io.StringIO()  # not a terminal: no bar
    ReadProgress("demandes.csv", total_bytes=1, stream=quiet).advance(10, 1)
    assert quiet.getvalue() == ""


def test_a_scan_logs_its_progress_while_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ticks = iter(range(0, 10_000, 6))
    monkeypatch.setattr(progress_module, "_monotonic", lambda: float(next(ticks)))
    monkeypatch.setattr(stream_read, "BLOCK_BYTES", 4_096)
    path = tmp_path / "demandes.csv"
    _people(2_000).to_csv(path, sep=";", index=False)
    report = scan_file(path, ScanOptions(mode="sampling"), dialect=CsvDialect())
    lines = [r.getMessage() for r in caplog.records if r.name == progress_module.__name__]
    assert len(lines) >= 5, lines
    assert all("demandes.csv: read " in line and " columns, " in line for line in lines)
    assert report.rows == 2_000
    assert not [line for line in lines if "34 56" in line or "@exemple.fr" in line]  # counts only


def test_charter_scan_and_the_dag_check_stream_files(
    charter_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from charter_guardrails.checks.privacy.verdict import check_personal_data
    from charter_guardrails.core.policy import load_policy

    path = tmp_path / "export.csv"
    _people(1_000).to_csv(path, sep=";", index=False)
    assert charter(["scan", str(path), "--json"]) == 0
    out = capsys.readouterr()
    assert "reservoir sample of the whole file" in out.err
    columns = {c["name"]: c for c in json.loads(out.out)}
    assert columns["téléphone"]["rows"] == sample_size(0.01, 0.99)
    outcome = check_personal_data(load_policy("waste_tonnage"), "training", path=path, run_id="stream-1")
    assert outcome.scan.rows == 1_000
    assert "reservoir sample of the whole file" in outcome.scan.guarantee
    assert outcome.result.metrics["rows"] == 1_000
