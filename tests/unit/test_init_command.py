"""`charter init USE_CASE --from FILE`: a team's file (not a sample dataset) drafted into a policy with open TODOs and
two suites; validate lists the TODOs until they are filled; the suites pass on the file; no personal value leaks."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.policy import load_policy
from charter_guardrails.core.settings import get_settings

FIRST = ["Jean", "Marie", "Lucas", "Camille", "Hugo", "Chloé", "Louis", "Léa", "Nathan", "Manon", "Élodie", "Théo"]
LAST = ["Dupont", "Martin", "Bernard", "Lefèvre", "Moreau", "Garnier", "Rousseau", "Fontaine", "Chevalier", "Girard"]
HEADER = ["dossier_id", "demandeur", "courriel", "commentaire", "quartier", "date_dépôt", "montant"]
ROWS = 200


@dataclass
class Planted:
    """A generated file and the personal values planted in it."""

    path: Path
    separator: str
    encoding: str
    emails: list[str]
    names: list[str]
    phones: list[str]
    rows: list[list[str]]


def _make_file(path: Path, separator: str, encoding: str, seed: int) -> Planted:
    """Road-works reports: an id, a requester's name and email, a comment holding phone numbers, a district, a date
    and an amount (the label)."""
    rng = random.Random(seed)
    emails, names, phones, rows = [], [], [], []
    for i in range(ROWS):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first} {last}"
        email = f"{first.lower()}.{last.lower()}{i}@courrier-exemple.fr".translate(str.maketrans("éèÉ", "eee"))
        phone = f"0{rng.choice('67')} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {i % 90 + 10}"
        if i % 3 == 0:
            comment = f"Merci de me rappeler au {phone} au sujet du nid de poule signalé"
            phones.append(phone)
        else:
            comment = "Trottoir abîmé devant l'école, les poussettes ne passent plus"
        amount = f"{rng.uniform(40, 900):.2f}"
        if separator == ";":
            amount = amount.replace(".", ",")
        date = f"2025-{rng.randint(1, 9):02d}-{rng.randint(1, 28):02d}"
        district = rng.choice(["Vieux-Port", "Belsunce", "Noailles", "Le Panier", "La Joliette"])
        emails.append(email)
        names.append(name)
        rows.append([f"RV-{1000 + i}", name, email, comment, district, date, amount])

    def cell(value: str) -> str:
        return f'"{value}"' if separator in value else value

    text = "\n".join([separator.join(HEADER), *(separator.join(cell(v) for v in row) for row in rows)]) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return Planted(path, separator, encoding, emails, names, phones, rows)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One CHARTER_HOME for the module, and the NER model loaded once (every init of the module shares it)."""
    from charter_guardrails.checks.privacy.report import ScanOptions
    from charter_guardrails.checks.privacy.scanner import scan_frame
    from charter_guardrails.core.keys import init_keys

    root = tmp_path_factory.mktemp("init_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHARTER_HOME", str(root))
        for name in ("CHARTER_DATA_DIR", "CHARTER_REPORTS_DIR", "CHARTER_KEYS_DIR", "CHARTER_LEDGER_URL"):
            patch.delenv(name, raising=False)
        init_keys()
        import pandas as pd

        scan_frame(pd.DataFrame({"t": ["Jean Dupont habite à Marseille et attend une réponse"] * 3}), ScanOptions())
        yield root


@pytest.fixture(scope="module")
def files(home: Path) -> dict[str, Planted]:
    """The ',' UTF-8 file inside the data folder; the ';' Latin-1 file with decimal commas outside it."""
    return {
        "comma_utf8": _make_file(get_settings().data_dir / "voirie" / "reports.csv", ",", "utf-8", seed=3),
        "semicolon_latin1": _make_file(home.parent / "elsewhere" / "reports.csv", ";", "latin-1", seed=5),
    }


@dataclass
class Drafted:
    planted: Planted
    policy: Path
    training_suite: Path
    inference_suite: Path
    code: int
    out: str
    err: str


def _dirs(root: Path) -> list[str]:
    return ["--policies-dir", str(root / "policies"), "--expectations-dir", str(root / "expectations")]


@pytest.fixture(scope="module")
def drafted(home: Path, files: dict[str, Planted]) -> dict[str, Drafted]:
    """`charter init` run once on each file (the scan is the slow part)."""
    import contextlib
    import io

    out: dict[str, Drafted] = {}
    for key, planted in files.items():
        root = home / "drafts" / key
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = charter(["init", "reports", "--from", str(planted.path), "--label", "montant", *_dirs(root)])
        out[key] = Drafted(
            planted,
            root / "policies" / "reports.yaml",
            root / "expectations" / "reports.training.json",
            root / "expectations" / "reports.inference.json",
            code,
            stdout.getvalue(),
            stderr.getvalue(),
        )
    return out


CASES = ["comma_utf8", "semicolon_latin1"]


def _set(data: Any, key_path: str, value: Any) -> None:
    """Set the value at a key path such as ``datasets[0].retention.days``."""
    parts = [p for p in re.split(r"\.|\[(\d+)\]", key_path) if p]
    target = data
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    target[int(last) if last.isdigit() else last] = value


def _fill(key: str) -> Any:
    """What a person would declare for each TODO."""
    contact = {"name": "Direction de la voirie", "email": "voirie@metropole.example"}
    if key.endswith("data_subjects[0]"):
        return "usagers"
    if key.endswith("retention.days"):
        return 730
    return {
        "title": "Estimation du coût des signalements de voirie",
        "purpose": "Estimer le coût des réparations signalées par les usagers pour planifier les équipes.",
        "legal_basis": "public_task",
        "owner": contact,
        "approvers[0]": {"name": "Agent Voirie", "email": "agent@metropole.example", "username": "agent.voirie"},
        "alert_recipients[0]": "rssi@metropole.example",
        "dpo": {"name": "DPO", "email": "dpo@metropole.example"},
        "decision_support": True,
        "task_nature": "decision_support",
        "human_recourse": {"name": "Médiation", "email": "mediation@metropole.example"},
        "sourcing.origin": "internal",
        "objective.statement": "Estimer le coût à vingt pour cent près pour neuf signalements sur dix.",
    }[key]


def _validate(policy: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = charter(["policy", "validate", str(policy), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("case", CASES)
def test_init_drafts_a_policy_whose_todos_block_validation_until_filled(
    drafted: dict[str, Drafted], case: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from charter_guardrails.core.policy import OpenTodos

    run = drafted[case]
    assert run.code == 0, run.err
    assert run.policy.exists()
    assert run.training_suite.exists()
    assert run.inference_suite.exists()
    assert "charter policy validate" in run.out
    assert "TODO(s)" in run.out

    code, text = _validate(run.policy, capsys)
    assert code == 2
    todo_lines = [line for line in text.splitlines() if line.startswith("todo")]
    keys = [line.split(": ", 2)[1] for line in todo_lines]
    assert {"title", "purpose", "approvers[0]", "alert_recipients[0]", "datasets[0].retention.days"} <= set(keys)
    assert "datasets[0].data_subjects[0]" in keys

    capsys.readouterr()
    assert charter(["policy", "validate", str(run.policy), "--json"]) == 2
    reported = json.loads(capsys.readouterr().out)[0]
    assert reported["ok"] is False
    assert [t["key"] for t in reported["todos"]] == keys
    with pytest.raises(OpenTodos):
        load_policy(run.policy)

    raw = yaml.safe_load(run.policy.read_text(encoding="utf-8"))
    for key in keys:
        _set(raw, key, _fill(key))
    filled = tmp_path / "reports.yaml"
    filled.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    policy = load_policy(filled)
    assert _validate(filled, capsys) == (0, f"ok       {filled} (reports)\n")

    training = policy.training_dataset
    assert (training.csv.separator, training.csv.decimal) == ((",", ".") if case == "comma_utf8" else (";", ","))
    assert training.csv.encoding == ("utf-8" if case == "comma_utf8" else "cp1252")
    columns = {c.name: c for c in training.columns}
    assert columns["dossier_id"].role.value == "identifier"
    assert columns["dossier_id"].pseudonymise
    assert columns["commentaire"].role.value == "free_text"
    assert columns["commentaire"].pseudonymise
    assert {"FR_PHONE", "PHONE_NUMBER"} & set(columns["commentaire"].pii_allowed)
    assert "EMAIL_ADDRESS" in columns["courriel"].pii_allowed
    assert "PERSON" in columns["demandeur"].pii_allowed
    assert columns["date_dépôt"].role.value == "timestamp"
    assert columns["date_dépôt"].type.value == "date"
    assert columns["quartier"].type.value == "category"
    assert columns["montant"].role.value == "label"
    assert columns["montant"].type.value == "float"
    assert training.personal_data
    assert training.retention is not None
    assert training.retention.date_column == "date_dépôt"
    assert (policy.model.kind, policy.model.target, policy.model.metric) == ("regressor", "montant", "mae")
    assert "montant" not in {c.name for c in policy.dataset("inference").columns}
    expected_path = "voirie/reports.csv" if case == "comma_utf8" else "reports/reports.csv"
    assert training.path == expected_path
    assert ("cp " in run.out) == (case == "semicolon_latin1")  # the copy command for a file outside the data folder


@pytest.mark.parametrize("case", CASES)
def test_the_drafted_suites_pass_on_the_file_they_were_drafted_from(
    drafted: dict[str, Drafted], case: str, tmp_path: Path
) -> None:
    from charter_guardrails.checks.quality.runner import validate_file
    from charter_guardrails.core.results import Verdict

    run = drafted[case]
    raw = yaml.safe_load(run.policy.read_text(encoding="utf-8"))
    from charter_guardrails.core.policy import open_todos

    for key, _ in open_todos(raw):
        _set(raw, key, _fill(key))
    filled = tmp_path / "reports.yaml"
    filled.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    policy = load_policy(filled)

    result = validate_file(policy, "training", run.planted.path, suite=run.training_suite, data_docs=False)
    assert result.verdict is Verdict.PASS, result.summary

    planted = run.planted
    batch = tmp_path / "batch.csv"
    keep = len(HEADER) - 1  # the label is the last column
    lines = [planted.separator.join(HEADER[:keep])] + [
        planted.separator.join(f'"{v}"' if planted.separator in v else v for v in row[:keep]) for row in planted.rows
    ]
    batch.write_bytes(("\n".join(lines) + "\n").encode(planted.encoding))
    result = validate_file(policy, "inference", batch, suite=run.inference_suite, data_docs=False)
    assert result.verdict is Verdict.PASS, result.summary

    suite = json.loads(run.training_suite.read_text(encoding="utf-8"))
    kinds = {(e["type"], e["kwargs"].get("column")) for e in suite["expectations"]}
    assert ("expect_column_values_to_be_unique", "dossier_id") in kinds
    assert ("expect_column_values_to_be_in_set", "quartier") in kinds
    assert ("expect_column_values_to_be_between", "montant") in kinds
    for column in ("demandeur", "courriel", "commentaire", "dossier_id"):
        assert ("expect_column_values_to_be_in_set", column) not in kinds
        assert ("expect_column_values_to_be_between", column) not in kinds


@pytest.mark.parametrize("case", CASES)
def test_no_planted_personal_value_is_written_or_printed(drafted: dict[str, Drafted], case: str) -> None:
    run = drafted[case]
    texts = {p.name: p.read_text(encoding="utf-8") for p in (run.policy, run.training_suite, run.inference_suite)}
    texts["stdout"], texts["stderr"] = run.out, run.err
    planted = run.planted
    assert planted.emails
    assert planted.names
    assert planted.phones
    values = [*planted.emails, *planted.names, *planted.phones, *(p.replace(" ", "") for p in planted.phones)]
    values += [e.split("@")[0] for e in planted.emails]
    for where, text in texts.items():
        leaked = sorted({v for v in values if v in text})
        assert not leaked, f"{where} holds planted personal values: {len(leaked)}"
        assert not re.search(r"\b0[67](?: ?\d\d){4}\b", text), f"{where} holds a phone number"


def _snapshot(run: Drafted) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (run.policy, run.training_suite, run.inference_suite)}


def test_a_second_init_refuses_to_overwrite_unless_forced(
    drafted: dict[str, Drafted], capsys: pytest.CaptureFixture[str]
) -> None:
    run = drafted["comma_utf8"]
    before = _snapshot(run)
    root = run.policy.parents[1]
    args = ["init", "reports", "--from", str(run.planted.path), "--label", "montant", *_dirs(root)]
    capsys.readouterr()
    assert charter(args) == 2
    err = capsys.readouterr().err
    assert str(run.policy) in err
    assert "--force" in err
    assert _snapshot(run) == before

    run.training_suite.write_text("{}", encoding="utf-8")  # edited since: --force writes the draft again
    assert charter([*args, "--force"]) == 0
    assert _snapshot(run) == before


def test_bad_inputs_exit_2_with_a_clear_message_and_write_nothing(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = tmp_path / "header.csv"
    header_only.write_text("a;b\n", encoding="utf-8")
    cases = {
        str(tmp_path / "missing.csv"): "file not found",
        str(empty): "empty",
        str(header_only): "no data rows",
    }
    for source, message in cases.items():
        capsys.readouterr()
        assert charter(["init", "bad_input", "--from", source, *_dirs(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert message in err
        assert "nothing was written" in err
        assert not (tmp_path / "out").exists()


def test_a_label_that_is_not_a_column_and_a_bad_id_are_refused(
    files: dict[str, Planted], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = str(files["comma_utf8"].path)
    assert charter(["init", "reports", "--from", source, "--label", "prix", *_dirs(tmp_path)]) == 2
    assert "--label 'prix' is not a column" in capsys.readouterr().err
    assert charter(["init", "Bad-Id", "--from", source, *_dirs(tmp_path)]) == 2
    assert "invalid use case id" in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.yaml"))
    assert not any(tmp_path.rglob("*.json"))


def test_without_a_label_the_model_is_left_to_declare(
    files: dict[str, Planted], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = str(files["comma_utf8"].path)
    assert charter(["init", "reports", "--from", source, "--json", *_dirs(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    keys = {t["key"] for t in summary["todos"]}
    assert {"model.kind", "model.target", "model.metric", "objective.success_metric"} <= keys
    assert "label" not in {c["role"] for c in summary["columns"]}
    inference = json.loads((tmp_path / "expectations" / "reports.inference.json").read_text(encoding="utf-8"))
    assert "montant" in inference["expectations"][0]["kwargs"]["column_set"]
