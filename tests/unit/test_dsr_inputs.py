"""Data-subject requests, the inputs: identifiers validated and normalised per type, malformed ones refused with a
clear error that never repeats them, records that span lines erased whole, and which manifest covers a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from charter_demo.sample_data import Canaries
from charter_guardrails.core.settings import get_settings

from tests.hardening.support_faults import CanarySearch
from tests.unit.test_dsr import _events, charter


@pytest.fixture
def ledger(charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migrated SQLite ledger in the test's CHARTER_HOME."""
    from charter_guardrails.ledger import db

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)


def test_records_spanning_lines_are_erased_whole(ledger: None, capsys: pytest.CaptureFixture[str]) -> None:
    """A quoted cell may hold line ends and quotes: the erasure removes the whole record, and only it."""
    folder = get_settings().data_dir / "citizen_requests"
    folder.mkdir(parents=True)
    target = folder / "export_manuel.csv"
    records = [
        "request_id;message\r\n",
        'A-1;"ligne un\r\nligne ""deux"" ; fin"\r\n',
        'A-2;"Je suis joignable au\n06 12 34 56 78\nmerci"\r\n',
        "\r\n",
        "A-3;sans rien\r\n",
        'A-4;"fin ""citée"""',
    ]
    target.write_bytes("".join(records).encode("utf-8"))
    before = pd.read_csv(target, sep=";", dtype=str)
    erase = ["dsr", "erase", "--identifier", "0612345678", "--type", "phone", "--request-id", "r-5", "--yes"]
    assert charter(erase) == 0
    assert "1 row(s) removed" in capsys.readouterr().out
    assert target.read_bytes() == "".join(r for r in records if not r.startswith("A-2")).encode("utf-8")
    after = pd.read_csv(target, sep=";", dtype=str)
    pd.testing.assert_frame_equal(after, before[before["request_id"] != "A-2"].reset_index(drop=True))


@pytest.mark.parametrize(
    ("kind", "damage"),
    [
        ("nir", lambda c: c.nir[:-1] + str((int(c.nir[-1]) + 1) % 10)),
        ("iban", lambda c: c.iban[:-1] + str((int(c.iban[-1]) + 1) % 10)),
        ("nir", lambda c: c.nir[:7]),
        ("phone", lambda c: "12"),
        ("email", lambda c: c.email.replace("@", " ")),
    ],
)
def test_a_malformed_identifier_is_a_clear_error(
    ledger: None, kind: str, damage: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    person = Canaries.from_seed(20261128)
    bad = damage(person)
    for action in (["find"], ["erase", "--request-id", "r-3", "--yes"]):
        assert charter(["dsr", *action, "--identifier", "-", "--type", kind], stdin=bad) == 2
        err = capsys.readouterr().err
        assert f"the {kind.upper() if kind in ('nir', 'iban') else kind}" in err.replace("e-mail", "email")
        assert bad not in err
        assert not CanarySearch(person).search("stderr", "stderr", err)
    assert not _events("dsr.erased")


def test_help_says_how_to_keep_the_value_out_of_the_history(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("find", "erase"):
        with pytest.raises(SystemExit) as exit_info:
            charter(["dsr", action, "--help"])
        assert exit_info.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "`--identifier -`" in text
        assert "standard input" in text
        assert "history" in text


def test_identifier_forms_are_normalised() -> None:
    from charter_guardrails.dsr.identifiers import parse_identifier

    key = b"k" * 32
    phone = parse_identifier("+33 6 12 34 56 78", "phone")
    for text in ("06 12 34 56 78", "06.12.34.56.78", "0033 612345678", "+33 (0)6 12 34 56 78", "0612345678"):
        assert phone.matches_text(f"appelez le {text}."), text
        assert parse_identifier(text.replace("(0)", ""), "phone").keyed_hash(key) == phone.keyed_hash(key)
    assert not phone.matches_text("106 12 34 56 789")
    name = parse_identifier("Zéphyrine Quillebeuf", "name")
    assert name.matches_text("signé ZEPHYRINE   quillebeuf, merci")
    assert not name.matches_text("Zéphyrine Quillebeufs")
    email = parse_identifier("Jean.Dupont@Example.fr", "email")
    assert email.matches_text("écrire à jean.dupont@example.fr.")
    assert not email.matches_text("xjean.dupont@example.fr")
    assert "Dupont" not in repr(email)
    assert "Dupont" not in str(email)


def test_which_manifest_covers_a_file(charter_home: Path, tmp_path: Path) -> None:
    """The file itself, a folder of Parquet files holding it, or the same use-case folder and name in an install
    this one was copied or moved from; never another file of this install."""
    from charter_guardrails.dsr.trained import covers

    data = get_settings().data_dir
    (data / "citizen_requests" / "parts").mkdir(parents=True)
    target = data / "citizen_requests" / "training.csv"
    assert covers(target, target)
    assert covers(data / "citizen_requests" / "parts", data / "citizen_requests" / "parts" / "p1.parquet")
    assert covers(tmp_path / "old-home" / "data" / "citizen_requests" / "training.csv", target)
    assert not covers(tmp_path / "old-home" / "data" / "waste_tonnage" / "training.csv", target)
    assert not covers(data / "citizen_requests" / "training__biased.csv", target)
    assert not covers(charter_home / "archive" / "citizen_requests" / "training.csv", target)


def test_the_predictions_beside_a_batch_lose_the_erased_rows_and_are_renumbered(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from charter_guardrails.dsr.predictions import erase_predictions

    batch = tmp_path / "lot.csv"
    batch.write_text("a\n1\n2\n3\n4\n5\n", encoding="utf-8")
    predictions = tmp_path / "lot.predictions.parquet"
    pq.write_table(pa.table({"row": [1, 2, 3, 4, 5], "prediction": ["p1", "p2", "p3", "p4", "p5"]}), predictions)
    assert erase_predictions(batch, {1, 3}) == 2  # the 2nd and 4th data rows (0-based 1 and 3)
    left = pq.read_table(predictions).to_pydict()
    assert left == {"row": [1, 2, 3], "prediction": ["p1", "p3", "p5"]}
    assert erase_predictions(tmp_path / "other.csv", {0}) == 0  # no predictions beside it: nothing to do
    assert not list(tmp_path.glob(".*.tmp"))
