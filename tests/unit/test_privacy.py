"""Personal data: the column scanner, the policy verdicts, the reports, the ledger rows, pseudonymisation,
`charter scan` / `charter pseudonymise`, and the promise that no raw personal value leaves the process."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from charter_demo.sample_data import generate
from charter_guardrails.checks.privacy.masking import mask
from charter_guardrails.checks.privacy.pseudonymise import entity_token, pseudonym, pseudonymise_frame
from charter_guardrails.checks.privacy.report import ScanOptions, miss_probability, sample_size
from charter_guardrails.checks.privacy.scanner import scan_frame
from charter_guardrails.checks.privacy.verdict import check_personal_data
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.policy import UseCasePolicy, load_policy
from charter_guardrails.core.settings import get_settings
from charter_guardrails.ledger.models import AlertOutbox, AuditEvent, CheckResultRecord, CheckRun, Incident, PiiFinding
from charter_guardrails.ledger.store import ledger_session
from sqlalchemy import select

ROWS = 240  # small: NER runs on every message


@pytest.fixture
def sample(charter_home: Path, policies: dict[str, Any]) -> Path:
    data_dir = get_settings().data_dir
    generate(data_dir, policies, rows=ROWS)  # type: ignore[arg-type]
    return data_dir


def test_sample_size_guarantee() -> None:
    assert sample_size(0.01, 0.99) == 459
    assert miss_probability(0.01, 459) <= 0.01 < miss_probability(0.01, 458)


def test_masking_never_shows_the_value() -> None:
    assert mask("06 12 34 56 78", "FR_PHONE") == "06 ** ** ** 78"
    assert mask("1 85 12 13 123 456 16", "FR_NIR") == "1 85 ** ** *** *** 16"
    assert mask("jean.dupont@exemple.fr", "EMAIL_ADDRESS") == "j***@e***.fr"
    assert mask("Jean Dupont", "PERSON") == "J*** D***"
    assert mask("AB-123-CD", "FR_LICENSE_PLATE") == "A*-***-*D"


def test_sampling_finds_a_one_percent_column_and_states_its_guarantee() -> None:
    rows = 20_000
    phones = [
        f"06 12 34 {i % 100:02d} {i % 97:02d}" if i % 50 == 0 else f"CMD-{i:06d}" for i in range(rows)
    ]  # 2 % phones
    frame = pd.DataFrame(
        {
            "reference": phones,
            "montant": [f"{i % 1000},50" for i in range(rows)],
            "code_postal": [f"13{i % 17:03d}" for i in range(rows)],
        }
    )
    report = scan_frame(frame, ScanOptions(mode="sampling", min_detectable_rate=0.01, confidence=0.99))
    assert report.scanned_rows == 459
    assert report.rows == rows
    assert "probability at least 0.990" in report.guarantee
    assert report.column("reference").entity_types() == {"FR_PHONE"}
    assert 0.01 <= report.column("reference").findings[0].share <= 0.04
    assert not report.column("montant").findings
    assert not report.column("code_postal").findings
    exhaustive = scan_frame(frame, ScanOptions(mode="exhaustive"))
    assert exhaustive.column("reference").findings[0].count == rows // 50


def test_structured_columns_skip_ner_and_use_column_names_as_context() -> None:
    frame = pd.DataFrame(
        {
            "siren_fournisseur": ["732829320", "552100554", "732829320"],
            "numero_commande": ["732829320", "552100554", "732829320"],
            "categorie": ["voirie", "proprete", "voirie"],
            "vide": [None, None, None],
        }
    )
    report = scan_frame(frame, ScanOptions(mode="exhaustive"))
    assert report.column("siren_fournisseur").entity_types() == {"FR_SIREN"}
    assert report.column("numero_commande").findings == []
    assert report.column("numero_commande").suspects
    assert report.column("categorie").kind == "structured"
    assert report.column("vide").kind == "empty"


def _free_text_table(rows: int) -> pd.DataFrame:
    """Citizen messages, all distinct, with names (capitalised or not), phones, NIRs, e-mails and streets."""
    import random

    from stdnum.fr import nir

    rng = random.Random(7)
    first = ["Jean", "Marie", "Henri", "Lucie", "Karim", "Sophie", "René", "Inès", "Paul", "Chloé"]
    last = ["Dupont", "Lévy", "Fournier", "Benali", "Martin", "Garnier", "Nguyen", "Rey", "Blin", "Vidal"]
    messages, references = [], []
    for i in range(rows):
        name = f"{rng.choice(first)} {rng.choice(last)}"
        body = (
            f"{rng.choice('12')}{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}"
            f"13{rng.randint(1, 120):03d}{rng.randint(1, 999):03d}"
        )
        text = rng.choice(
            [
                f"Bonjour, je suis {name}, rappelez-moi au 06 {i % 100:02d} {i % 97:02d} 34 {i % 89:02d}.",
                f"bonjour je suis {name.lower()}, le lampadaire du {i} rue de la Paix est en panne",
                f"Mon numéro de sécurité sociale est le {body}{nir.calc_check_digits(body)} (demande {i}).",
                f"Écrivez-moi à {name.split()[0].lower()}.{i}@exemple.fr pour le dossier {i}.",
                f"La collecte n'est pas passée au {i % 300} boulevard {name}, merci.",
                f"Rien à signaler pour la demande {i}.",
            ]
        )
        messages.append(text)
        references.append(f"CMD-{i:06d}" if i % 3 else f"06 {i % 100:02d} {i % 97:02d} 12 {i % 89:02d}")
    return pd.DataFrame({"message": messages, "reference_usager": references})


def test_exhaustive_agrees_with_a_naive_pass_over_every_value() -> None:
    """The fast path (RE2 plan, worker processes, OpenBLAS NER) finds exactly what every pattern on
    every value plus spaCy's stock NER pipeline (default thinc ops) on every value find."""
    import spacy
    from charter_guardrails.checks.privacy.analyzer import FRENCH_MODEL, NER_ENTITY_MAPPING, NER_SCORE
    from charter_guardrails.checks.privacy.detector import VECTORISE_FROM, get_detector, merge_ner
    from charter_guardrails.checks.privacy.report import Hit
    from charter_guardrails.checks.privacy.scanner import detect_values

    frame = _free_text_table(VECTORISE_FROM + 500)
    detector = get_detector()
    stock = spacy.load(
        FRENCH_MODEL, exclude=["tok2vec", "morphologizer", "parser", "attribute_ruler", "lemmatizer", "senter"]
    )
    for column, kind in (("message", "free_text"), ("reference_usager", "structured")):
        values = list(dict.fromkeys(frame[column]))
        assert len(values) >= VECTORISE_FROM
        boosted = detector.context_entities(column)
        naive = [detector.pattern_hits(v, boosted) for v in values]
        if kind == "free_text":
            ner = [
                [
                    Hit(NER_ENTITY_MAPPING[e.label_], e.start_char, e.end_char, NER_SCORE)
                    for e in doc.ents
                    if e.label_ in NER_ENTITY_MAPPING
                ]
                for doc in stock.pipe(values)
            ]
            naive = [merge_ner(p, n) for p, n in zip(naive, ner, strict=True)]
        fast = detect_values(values, kind, column, n_process=2)
        assert fast == naive, column
        assert sum(1 for hits in fast if hits) > len(values) // 3
    report = scan_frame(frame, ScanOptions(mode="exhaustive", n_process=2))
    assert {"FR_PHONE", "FR_NIR", "EMAIL_ADDRESS", "PERSON", "LOCATION"} <= report.column("message").entity_types()


def test_ner_encoder_computes_each_distinct_window_once_with_the_same_vectors() -> None:
    import numpy as np
    from charter_guardrails.checks.privacy.analyzer import get_ner_pipeline

    nlp = get_ner_pipeline()
    fast = next(node for node in nlp.get_pipe("ner").model.walk() if node.name == "distinct_windows_tok2vec")
    stock = fast.layers[0]  # spaCy's own Tok2Vec, which the fast one wraps
    texts = [
        "",
        "Jean",
        "Bonjour, je suis Jean Dupont, rappelez-moi.",
        "Bonjour, je suis Marie Curie, rappelez-moi.",
        "  ",
        "le bus 21 ne passe plus rue de la République",
        "Jean",
    ] + [f"Demande {i} : rien à signaler." for i in range(50)]
    docs = [nlp.make_doc(t) for t in texts]
    expected, got = stock.predict(docs), fast.predict(docs)
    assert [e.shape for e in expected] == [g.shape for g in got]
    # Equal to float32 rounding: OpenBLAS may pick another kernel for the fewer rows of the distinct windows (its
    # small-matrix path on some CPUs), which sums in another order; the entities are compared exactly elsewhere.
    assert all(np.allclose(e, g, rtol=0, atol=1e-5) for e, g in zip(expected, got, strict=True))
    assert fast.predict([nlp.make_doc("")])[0].shape == (0, stock.get_dim("nO"))


def test_a_name_without_capitals_is_still_found_in_free_text() -> None:
    """No pruning on capitalisation: the French model finds names typed in lower case, so NER reads every value."""
    frame = pd.DataFrame(
        {
            "message": [
                "merci de rappeler jean dupont au sujet de la collecte",
                "le bus ne passe plus, signé rené fournier",
                "rien à signaler",
                "tout va bien",
            ]
        }
    )
    report = scan_frame(frame, ScanOptions(mode="exhaustive", free_text_columns=frozenset({"message"})))
    person = report.column("message").finding("PERSON")
    assert person is not None
    assert person.count == 2
    assert person.masked_examples == ["j*** d***", "r*** f***"]


def test_clean_citizen_training_passes(sample: Path) -> None:
    policy = load_policy("citizen_requests")
    outcome = check_personal_data(policy, "training", run_id="t1")
    assert outcome.result.verdict.value == "pass", outcome.result.summary
    message = outcome.scan.column("message")
    assert message.kind == "free_text"
    assert {"PERSON", "FR_PHONE", "EMAIL_ADDRESS"} <= message.entity_types()
    assert outcome.result.engagements == ["surete.1"]
    assert outcome.incident is None
    assert Path(outcome.result.report_path or "").exists()
    assert Path(outcome.reports["json"]).exists()


def test_undeclared_column_in_a_personal_dataset_fails_with_a_gdpr_incident(sample: Path) -> None:
    policy = load_policy("citizen_requests")
    outcome = check_personal_data(
        policy, "training", path=sample / "citizen_requests" / "training__pii_leak.csv", run_id="t2", exhaustive=True
    )
    assert outcome.result.verdict.value == "fail"
    bad = [c for c in outcome.columns if not c.ok]
    assert [c.column for c in bad] == ["telephone_usager"]
    assert not bad[0].declared
    assert bad[0].forbidden == ["FR_PHONE"]
    assert outcome.incident is not None
    assert outcome.incident.breach_type.value == "gdpr_compliance"
    assert outcome.incident.severity == "medium"
    assert "telephone_usager" in str(outcome.incident.facts)


def test_allowed_but_unpseudonymised_column_warns(sample: Path) -> None:
    policy = load_policy("citizen_requests")
    raw = policy.model_dump(mode="json")
    raw["datasets"][0]["columns"].append(
        {"name": "telephone_usager", "role": "feature", "personal_data": "contact", "pii_allowed": ["PHONE_NUMBER"]}
    )
    declared = UseCasePolicy.model_validate(raw)
    outcome = check_personal_data(
        declared, "training", path=sample / "citizen_requests" / "training__pii_leak.csv", run_id="t5"
    )
    assert outcome.result.verdict.value == "warn", outcome.result.summary
    column = next(c for c in outcome.columns if c.column == "telephone_usager")
    assert column.ok
    assert column.warning
    assert "telephone_usager" in outcome.result.summary


def test_non_personal_dataset_with_pii_fails_and_drafts_a_gdpr_incident(sample: Path) -> None:
    policy = load_policy("waste_tonnage")
    outcome = check_personal_data(
        policy, "training", path=sample / "waste_tonnage" / "training__pii_leak.csv", run_id="t3"
    )
    assert outcome.result.verdict.value == "fail"
    assert outcome.result.severity.value == "critical"
    column = next(c for c in outcome.columns if c.column == "contact_agent")
    assert {"EMAIL_ADDRESS", "FR_PHONE", "PERSON"} <= set(column.forbidden)
    assert outcome.incident is not None
    assert outcome.incident.breach_type.value == "gdpr_compliance"
    clean = check_personal_data(policy, "training", run_id="t4")
    assert clean.result.verdict.value == "pass", clean.result.summary


def test_unreadable_dataset_is_a_failing_verdict(charter_home: Path) -> None:
    policy = load_policy("waste_tonnage")
    outcome = check_personal_data(policy, "training", path=charter_home / "missing.csv")
    assert outcome.result.verdict.value == "fail"
    assert outcome.result.evidence["read_error"]["kind"] == "missing"


def _raw_values(data_dir: Path) -> set[str]:
    """Every personal value the generator put in the files: names, phones, e-mails, NIRs."""
    values: set[str] = set()
    phone = re.compile(r"(?:\+33 \d|0\d)(?: ?\d\d){4}")
    email = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
    nir_re = re.compile(r"[12] \d\d \d\d \d\d \d{3} \d{3} \d\d")
    for path in [
        data_dir / "waste_tonnage" / "training__pii_leak.csv",
        data_dir / "citizen_requests" / "training.csv",
        data_dir / "citizen_requests" / "training__pii_leak.csv",
    ]:
        text = path.read_bytes().decode("utf-8" if "citizen" in str(path) else "latin-1")
        values |= set(phone.findall(text)) | set(email.findall(text)) | set(nir_re.findall(text))
        values |= {m.strip() for m in re.findall(r"Je suis ([^,;]+),", text)}
        values |= {m.strip() for m in re.findall(r";([^;<\n]+) <", text)}  # contact_agent: "Name <email> phone"
    values = {v for v in values if len(v) >= 6}
    assert len(values) > 100
    return values


def test_charter_scan_pii_leak_exits_1_records_incident_and_leaks_nothing(
    ledger_url: str, sample: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    leak = sample / "waste_tonnage" / "training__pii_leak.csv"
    policy_file = get_settings().policies_dir / "waste_tonnage.yaml"
    code = charter(["scan", str(leak), "--policy", str(policy_file), "--json", "--run-id", "leak-1"])
    out = capsys.readouterr()
    assert code == 1
    columns = json.loads(out.out)
    contact = next(c for c in columns if c["name"] == "contact_agent")
    assert {f["entity_type"] for f in contact["findings"]} >= {"EMAIL_ADDRESS", "FR_PHONE", "PERSON"}
    assert contact["ok"] is False
    assert contact["declared"] is False
    for finding in contact["findings"]:
        assert set(finding) >= {"entity_type", "count", "share", "mean_score", "max_score", "masked_examples"}
    with ledger_session() as session:
        incident = session.scalars(select(Incident)).one()
        assert incident.breach_type == "gdpr_compliance"
        assert incident.use_case == "waste_tonnage"
        assert incident.run_id == "leak-1"
        assert session.scalars(select(AlertOutbox).where(AlertOutbox.incident_id == incident.id)).all()
        run = session.scalars(select(CheckRun)).one()
        assert (run.dag_id, run.run_id) == ("cli", "leak-1")
        result = session.scalars(select(CheckResultRecord)).one()
        assert result.check == "personal_data"
        assert result.verdict == "fail"
        assert result.report_path
        findings = session.scalars(select(PiiFinding).where(PiiFinding.check_result_id == result.id)).all()
        assert {f.entity_type for f in findings if f.column == "contact_agent"} >= {"EMAIL_ADDRESS", "FR_PHONE"}
        assert not any(f.allowed for f in findings)
        ledger_dump = json.dumps(
            [
                [(r.summary, r.evidence, r.metrics) for r in session.scalars(select(CheckResultRecord))],
                [(f.column, f.entity_type, f.masked_examples) for f in findings],
                [(i.title, i.nature, i.facts, i.measures_taken) for i in session.scalars(select(Incident))],
                [a.payload for a in session.scalars(select(AlertOutbox))],
                [e.payload for e in session.scalars(select(AuditEvent))],
            ],
            ensure_ascii=False,
            default=str,
        )
    # a clean scan (no policy) of the citizen files too: their messages carry names, phones, e-mails, NIRs
    assert charter(["scan", str(sample / "citizen_requests" / "training.csv"), "--exhaustive", "--json"]) == 0
    assert charter(["scan", str(sample / "citizen_requests" / "training__pii_leak.csv"), "--json"]) == 0
    out2 = capsys.readouterr()
    reports = "".join(p.read_text(encoding="utf-8") for p in get_settings().reports_dir.rglob("*") if p.is_file())
    assert "contact_agent" in reports
    assert "***" in reports
    haystack = "\n".join([out.out, out.err, out2.out, out2.err, caplog.text, reports, ledger_dump])
    leaked = sorted(v for v in _raw_values(sample) if v in haystack)
    assert leaked == []


def test_charter_scan_without_policy_says_what_it_assumed(
    charter_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        "nom;téléphone;montant\nJosé Müller;06 12 34 56 78;12,50\nRené Ça;07 98 76 54 32;3,10\n".encode("cp1252")
    )
    assert charter(["scan", str(path), "--json"]) == 0
    out = capsys.readouterr()
    assert "cp1252" in out.err
    assert "';'" in out.err
    assert "decimal ','" in out.err
    columns = {c["name"]: c for c in json.loads(out.out)}
    assert [f["entity_type"] for f in columns["téléphone"]["findings"]] == ["FR_PHONE"]
    assert columns["montant"]["findings"] == []


@pytest.mark.parametrize(
    ("name", "content", "code", "message"),
    [
        ("empty.csv", b"", 2, "empty"),
        ("garbage.csv", bytes(range(256)) * 8, 2, "NUL bytes"),
        ("bom.csv", "\ufeffcourriel;ville\nmarie.curie@exemple.fr;Lyon\n".encode(), 0, None),
        ("header_only.csv", b"a;b;c\n", 0, None),
        ("nulls.csv", b"vide;rempli;null\n;06 12 34 56 78;\n;;\n", 0, None),
    ],
)
def test_bad_input_works_or_fails_clearly(
    charter_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    code: int,
    message: str | None,
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert charter(["scan", str(path), "--json"]) == code
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    if message:
        assert message in out.err
        assert "charter: error:" in out.err
    else:
        columns = json.loads(out.out)
        if name == "bom.csv":
            assert columns[0]["name"] == "courriel"
            assert columns[0]["findings"][0]["entity_type"] == "EMAIL_ADDRESS"
        if name == "nulls.csv":
            kinds = {c["name"]: c["kind"] for c in columns}
            assert kinds == {"vide": "empty", "rempli": "structured", "null": "empty"}


def test_huge_cells_and_ten_thousand_columns(
    charter_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.csv"
    cell = "x" * 1_200_000 + " 06 12 34 56 78"
    big.write_text(f"blob;n\n{cell};1\ncourt;2\n", encoding="utf-8")
    assert charter(["scan", str(big), "--json"]) == 0
    columns = json.loads(capsys.readouterr().out)
    assert [f["entity_type"] for f in columns[0]["findings"]] == ["FR_PHONE"]
    wide = tmp_path / "wide.csv"
    header = ";".join(f"c{i}" for i in range(10_000))
    wide.write_text(header + "\n" + ";".join(str(i) for i in range(10_000)) + "\n", encoding="utf-8")
    assert charter(["scan", str(wide), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 10_000


def test_pseudonymise_is_keyed_deterministic_and_minimises(
    sample: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    import base64

    from charter_guardrails.core.keys import load_pseudonymisation_key, pseudonymisation_key_for

    caplog.set_level(logging.DEBUG)
    policy_file = get_settings().policies_dir / "citizen_requests.yaml"
    source = sample / "citizen_requests" / "training__pii_leak.csv"
    target = charter_out = sample / "out" / "training.csv"
    assert charter(["pseudonymise", str(source), str(target), "--policy", str(policy_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dropped_columns"] == ["telephone_usager"]
    assert report["hashed_columns"] == ["request_id"]
    assert report["masked_columns"] == ["message"]
    assert report["masked_entities"]["FR_PHONE"] > 0
    policy = UseCasePolicy.from_file(policy_file)
    original = pd.read_csv(source, sep=";", dtype=str)
    out = pd.read_csv(charter_out, sep=";", dtype=str)
    assert list(out.columns) == [c.name for c in policy.training_dataset.columns]
    key = pseudonymisation_key_for(policy.id)  # the use case's own key, derived from the master key
    assert out["request_id"].tolist() == [pseudonym(key, v) for v in original["request_id"]]
    text = charter_out.read_text(encoding="utf-8")
    assert not [v for v in _raw_values(sample) if v in text]
    assert re.search(r"<PERSON_[0-9a-f]{10}>", text)
    assert re.search(r"<FR_PHONE_[0-9a-f]{10}>", text)
    master = load_pseudonymisation_key()
    for secret in (base64.b64encode(key).decode(), key.hex(), base64.b64encode(master).decode(), master.hex()):
        assert secret not in caplog.text
        assert secret not in text
    # deterministic: the same frame gives the same output, so joins on pseudonyms still work
    frame = original.head(20)
    first, _ = pseudonymise_frame(frame, policy.training_dataset, key)
    second, _ = pseudonymise_frame(frame, policy.training_dataset, key)
    assert first.equals(second)
    other, _ = pseudonymise_frame(frame, policy.training_dataset, b"k" * 32)
    assert not other["request_id"].equals(first["request_id"])
    assert entity_token(key, "PERSON", "Jean  Dupont") == entity_token(key, "PERSON", "jean dupont")


def test_sql_table_is_scanned_like_a_file(charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import create_engine

    url = f"sqlite:///{charter_home / 'warehouse.db'}"
    monkeypatch.setenv("CHARTER_DATA_URL", url)
    engine = create_engine(url)
    pd.DataFrame(
        {"commune": ["13055", "13001", "13005"], "telephone_agent": ["06 12 34 56 78", "07 98 76 54 32", None]}
    ).to_sql("collecte", engine, index=False)
    engine.dispose()
    raw = load_policy("waste_tonnage").model_dump(mode="json")
    raw["datasets"][0].update({"format": "sql", "table": "collecte", "path": None})
    policy = UseCasePolicy.model_validate(raw)
    outcome = check_personal_data(policy, "training", run_id="sql-1")
    assert outcome.result.verdict.value == "fail"
    assert [(c.column, c.forbidden) for c in outcome.columns if not c.ok] == [("telephone_agent", ["FR_PHONE"])]
    assert outcome.result.evidence[
        "declared_columns_absent"
    ]  # the table lacks most declared columns: reported, not fatal


def test_long_cells_are_cut_at_spaces_and_batched_by_characters() -> None:
    from charter_guardrails.checks.privacy.ner_pool import _char_batches, _cut

    text = " ".join(f"mot{i}" for i in range(10_000))
    pieces = list(_cut(text, 1_000))
    assert "".join(p for _, p in pieces) == text  # nothing lost, nothing repeated
    assert all(len(p) <= 1_000 for _, p in pieces)
    assert all(text[o : o + len(p)] == p for o, p in pieces)
    assert all(p.endswith(" ") for _, p in pieces[:-1])  # cut after a space: no word split
    assert list(_cut("court", 1_000)) == [(0, "court")]
    unbroken = "x" * 2_500
    assert [len(p) for _, p in _cut(unbroken, 1_000)] == [1_000, 1_000, 500]
    sizes = [10] * 5 + [900, 900, 5_000, 10]
    batches = list(_char_batches(["a" * n for n in sizes], 3, 1_000))
    assert batches == [(0, 3), (3, 6), (6, 7), (7, 8), (8, 9)]  # 3 items at most; 920 chars; alone over the budget


def test_a_long_free_text_cell_is_scanned_in_bounded_memory(tmp_path: Path) -> None:
    """A 1.5-million-character cell of words (not one token) goes through the NER in pieces and
    batches bounded by characters. Its peak memory, above the same scan of a short cell in the same
    clean environment, stays under 400 MiB (about 50 MiB measured; about 800 MiB when the whole cell
    went to spaCy in one batch), and a name and a phone number far into the cell are still found."""
    import os
    import random
    import subprocess
    import sys

    rng = random.Random(11)
    words = [
        "le",
        "service",
        "de",
        "la",
        "voirie",
        "a",
        "réparé",
        "trottoir",
        "devant",
        "école",
        "merci",
        "pour",
        "votre",
        "retour",
        "signalement",
        "quartier",
        "nuit",
        "éclairage",
        "panne",
        "depuis",
        "semaine",
    ]
    body = " ".join(rng.choice(words) for _ in range(240_000))
    cell = body[:300_000] + " Bonjour, je suis Madame Jeanne Dupont, appelez-moi au 06 12 34 56 78. " + body[300_000:]
    probe = (
        "import json, resource, sys\nfrom charter_guardrails.cli.main import main\n"
        "code = main(['scan', sys.argv[1], '--exhaustive', '--json'])\n"
        "print(json.dumps({'code': code, 'rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),"
        " file=sys.stderr)"
    )
    env = {
        name: os.environ[name]
        for name in ("PATH", "HOME", "TLDEXTRACT_CACHE", "HF_HUB_OFFLINE", "LANG")
        if name in os.environ
    }
    env["CHARTER_HOME"] = str(tmp_path / "home")

    def scan(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        path = tmp_path / "cells.csv"
        path.write_text(f"commentaire;n\n{text};1\ncourt texte;2\n", encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=600, env=env
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stderr.strip().splitlines()[-1]), json.loads(done.stdout)

    short, _ = scan("Bonjour, je suis Madame Jeanne Dupont, appelez-moi au 06 12 34 56 78.")
    figures, columns = scan(cell)
    found = {f["entity_type"] for f in columns[0]["findings"]}
    assert {"FR_PHONE", "PERSON"} <= found, found
    assert figures["rss_mib"] - short["rss_mib"] < 400, (figures, short)
