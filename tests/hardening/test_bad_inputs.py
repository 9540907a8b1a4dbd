"""Bad-input corpus: every malformed or hostile file in ``tests/data/bad/`` goes through
the entry points that would meet it (the dataset reader, ``charter scan``, ``charter hash`` then
``charter verify``, ``charter pseudonymise``, ``charter validate``; ``charter policy validate`` and the
commands that load a policy; the suite loader) and must give a clear, classified answer:

- a classified error: a :class:`DatasetReadError` kind, or exit 2 with ``charter: error: <file>: <what
  is wrong>; <what to do>``, never a traceback;
- or a failing verdict (exit 1, recorded in the ledger).

Nothing is lost: the input file is byte for byte unchanged, an error adds no ledger row (no partial
manifest, result or incident) and leaves no partial output file, and the audit chain still verifies.

Bounds, per entry point and input, measured in the harness's child process (see ``support_inputs``):
peak RSS above the process's baseline at most ``MEMORY_BOUND_MIB``, wall time at most ``TIME_BOUND_S``.
The corpus holds archive bombs that expand to 1 GiB, a 10 MiB cell and 100,000 columns: an input
that were expanded or parsed in full would break the memory bound by far.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHECKOUT_CONFIG
from tests.hardening.support_inputs import POLICY, corpus, full_scale

MBC = corpus()
#: Peak RSS an entry point may add to its process on one input.
MEMORY_BOUND_MIB = 512
#: Wall time one entry point may take on one input (the widest inputs take longest).
TIME_BOUND_S = 60 if full_scale() else 30
#: The child is ended above this RSS, whatever it is doing.
HARD_CAP_MIB = 4096

DATA_ENTRY_POINTS = ["reader", "scan", "hash", "verify", "pseudonymise", "validate"]
POLICY_ENTRY_POINTS = ["policy", "policy_scan", "policy_quality"]
SUITE_ENTRY_POINTS = ["suite", "suite_quality"]
#: Great Expectations takes about 20 s on 10,000 columns: ``make hardening`` only.
FULL_ONLY = {("columns_10k.csv", "validate")}


@dataclass(frozen=True)
class Expect:
    """What an input must produce. ``reader``: ``ok`` or the :class:`DatasetReadError` kind; ``hint``: a regex the
    message must match (what is wrong, or what to do)."""

    reader: str = "ok"
    hint: str = ""
    #: ``charter validate``: fail (a failing verdict) by default; ``ok`` only for inputs that are in fact good.
    validate: str = "fail"
    #: ``charter hash``: bytes are bytes; only an empty or unreadable Parquet file cannot be registered.
    hash: str = "ok"
    scan: frozenset[str] = field(default_factory=lambda: frozenset({"ok", "fail"}))


DATA: dict[str, Expect] = {
    "control_clean.csv": Expect(validate="ok", scan=frozenset({"ok"})),
    "truncated_in_quote.csv": Expect("parse", r"EOF inside string.*check the separator ';' and the quoting"),
    "truncated_mid_row.csv": Expect(),
    "unterminated_quote.csv": Expect("parse", r"EOF inside string starting at row 5"),
    "wrong_separator_comma.csv": Expect("parse", r"looks ','-separated, not ';'; fix csv.separator"),
    "wrong_separator_tab.csv": Expect("parse", r"looks '\\t'-separated"),
    "latin1_declared_utf8.csv": Expect("encoding", r"not valid utf-8 at byte \d+; declare the file's encoding"),
    "cp1252_declared_utf8.csv": Expect("encoding", r"not valid utf-8 at byte \d+; declare the file's encoding"),
    "bom_utf8.csv": Expect(validate="ok", scan=frozenset({"ok"})),
    "bom_utf16.csv": Expect("encoding", r"not valid utf-8 at byte 0"),
    "nul_bytes.csv": Expect("binary", r"contains NUL bytes, so it is not a text CSV"),
    "nul_bytes_late.csv": Expect("binary", r"contains NUL bytes"),
    "cell_10mb.csv": Expect("too_large", r"holds 10,485,759 characters, above the 2,000,000"),
    "columns_100k.csv": Expect("too_large", r"the header has 100,000 columns, above the 10,000"),
    "columns_10k.csv": Expect(),
    "empty.csv": Expect("empty", r"empty \(0 bytes\)", hash="error"),
    "blank_lines.csv": Expect("empty", r"no columns to read"),
    "header_only.csv": Expect(),
    "ragged_rows.csv": Expect("parse", r"Expected 7 fields in line 9, saw 9"),
    "binary_garbage.csv": Expect("binary", r"NUL bytes"),
    "binary_garbage_no_nul.csv": Expect("encoding", r"not valid utf-8"),
    "formula_injection.csv": Expect(),
    "html_injection.csv": Expect(),
    "parquet_corrupt_footer.parquet": Expect("parse", r"not a readable Parquet file", hash="error"),
    "parquet_bad_footer_length.parquet": Expect("parse", r"not a readable Parquet file", hash="error"),
    "parquet_truncated.parquet": Expect("parse", r"not a readable Parquet file", hash="error"),
    "parquet_bomb.parquet": Expect("too_large", r"announce 20,000,000 rows, more than 10 per byte"),
    "parquet_is_csv.parquet": Expect("parse", r"not a readable Parquet file", hash="error"),
    "parquet_empty.parquet": Expect("empty", r"empty \(0 bytes\)", hash="error"),
    "zip_bomb.csv.zip": Expect("binary", r"is a zip archive, which the readers never expand"),
    "gzip_bomb.csv.gz": Expect("binary", r"is a gzip archive, which the readers never expand"),
    "bz2_bomb.csv.bz2": Expect("binary", r"is a bzip2 archive"),
    "xz_bomb.csv.xz": Expect("binary", r"is a xz archive"),
    "zip_named_csv.csv": Expect("binary", r"is a zip archive"),
}

#: Policy files: (``charter policy validate``, the regex its message must match). Loading commands must agree.
POLICIES: dict[str, tuple[str, str]] = {
    "policy_control.yaml": ("ok", ""),
    "policy_path_traversal.yaml": (
        "error",
        r"datasets\[0\]\.path: path '\.\./\.\./etc/passwd' must be relative to the data folder",
    ),
    "policy_absolute_path.yaml": ("error", r"datasets\[0\]\.path: path '/etc/passwd' must be relative"),
    "policy_windows_path.yaml": ("error", r"datasets\[0\]\.path: .*must be relative"),
    "policy_missing_suite.yaml": ("ok", ""),  # the suite is looked up when it is used: charter validate says so
    "policy_suite_traversal.yaml": ("error", r"datasets\[0\]\.suite: .*must be a file name in the expectations folder"),
    "policy_unknown_key.yaml": ("error", r"datasets\[0\]\.columns\[2\]\.pii_alowed: unknown key"),
    "policy_invalid_yaml.yaml": ("error", r"invalid YAML at line 4"),
    "policy_not_mapping.yaml": ("error", r"the top level must be a mapping, got list"),
    "policy_billion_laughs.yaml": ("error", r"unknown key"),
    "policy_python_tag.yaml": ("error", r"invalid YAML at line 2"),
    "policy_binary.yaml": ("error", r"cannot read the file as UTF-8 text"),
    "policy_empty.yaml": ("error", r"the top level must be a mapping, got NoneType"),
}

#: Suite files: (the loader, the regex). ``charter validate --suite FILE`` must agree (exit 2), or fail its verdict.
SUITES: dict[str, tuple[str, str]] = {
    "suite_invalid_json.json": ("error", r"invalid JSON at line 1, column \d+"),
    "suite_unknown_expectation.json": ("error", r"expect_column_to_be_trustworthy\): unknown expectation type"),
    "suite_bad_kwargs.json": ("ok", r"could not be evaluated: .*min_value"),  # only GX's run sees it: a failing verdict
    "suite_no_severity.json": ("error", r"meta\.severity must be one of \['error', 'warning'\]"),
    "suite_not_object.json": ("error", r"the top level must be an object"),
    "suite_binary.json": ("error", r"cannot read the file as UTF-8 text"),
}


def _entry_points(name: str, group: str) -> list[str]:
    points = {"data": DATA_ENTRY_POINTS, "policy": POLICY_ENTRY_POINTS, "suite": SUITE_ENTRY_POINTS}[group]
    return [p for p in points if full_scale() or (name, p) not in FULL_ONLY]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Build the corpus, copy it into a fresh CHARTER_HOME's data folder, run the child once for every input."""
    paths = MBC.build()
    work = tmp_path_factory.mktemp("bad_inputs")
    home = work / "charter"
    data = home / "data" / "bad"
    out = work / "out"
    data.mkdir(parents=True)
    out.mkdir()
    control = data / "control_clean.csv"
    shutil.copyfile(paths["control_clean.csv"], control)
    cases = []
    for item in MBC.CORPUS:
        target = data / item.name
        shutil.copyfile(paths[item.name], target)
        cases.append(
            {
                "name": item.name,
                "path": str(target),
                "group": item.group,
                "entry_points": _entry_points(item.name, item.group),
                "output": str(out / f"{item.name}.pseudonymised.csv"),
            }
        )
    spec = {
        "cases": cases,
        "policy": str(POLICY),
        "control": str(control),
        "out_dir": str(out),
        "time_limit": 2 * TIME_BOUND_S,
        "hard_cap_mib": HARD_CAP_MIB,
        "warmup": DATA_ENTRY_POINTS,
    }
    (work / "spec.json").write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env.update({**CHECKOUT_CONFIG, "CHARTER_HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"})
    results_path = work / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("support_inputs.py")),
            str(work / "spec.json"),
            str(results_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    stopped = f"the harness stopped (exit {proc.returncode}): {results.get('killed', '')}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, stopped
    assert results.get("done"), stopped
    return {"results": results, "home": home, "out": out, "paths": paths, "cases": {c["name"]: c for c in cases}}


# ------------------------------------------------------------------------------------------------
# the corpus itself


def test_corpus_holds_the_inputs_the_issue_lists() -> None:
    bad = [f for f in MBC.CORPUS if "control" not in f.name]
    assert len(bad) >= 30, len(bad)
    names = {f.name for f in bad}
    required = [
        "truncated_in_quote.csv",
        "unterminated_quote.csv",
        "wrong_separator_comma.csv",
        "latin1_declared_utf8.csv",
        "bom_utf8.csv",
        "nul_bytes.csv",
        "cell_10mb.csv",
        "columns_100k.csv",
        "empty.csv",
        "header_only.csv",
        "parquet_corrupt_footer.parquet",
        "zip_bomb.csv.zip",
        "policy_path_traversal.yaml",
        "formula_injection.csv",
        "policy_missing_suite.yaml",
        "binary_garbage.csv",
        "columns_10k.csv",
    ]
    assert not [n for n in required if n not in names]
    assert set(DATA) | set(POLICIES) | set(SUITES) == {f.name for f in MBC.CORPUS}, (
        "every corpus file has an expectation"
    )


def test_corpus_is_deterministic_and_small_files_are_committed(tmp_path: Path) -> None:
    built = MBC.build(tmp_path, names=[f.name for f in MBC.CORPUS if not f.large])
    listed = subprocess.run(
        ["git", "ls-files", "tests/data/bad"], cwd=MBC.ROOT, capture_output=True, text=True
    ).stdout.split()
    for name, path in built.items():
        committed = MBC.ROOT / "tests" / "data" / "bad" / name
        assert committed.read_bytes() == path.read_bytes(), f"{name}: the committed file differs from the generator's"
        assert path.stat().st_size < 256 * 1024, f"{name} is large: mark it large=True (generated, not committed)"
        if listed:  # in a git checkout
            assert f"tests/data/bad/{name}" in listed, f"{name} is not committed"
    assert not [n for n in listed if "/generated/" in n], "large generated files are never committed"


def test_archive_bombs_expand_over_100_to_1() -> None:
    import zipfile

    paths = MBC.build(names=["zip_bomb.csv.zip", "gzip_bomb.csv.gz", "bz2_bomb.csv.bz2", "xz_bomb.csv.xz"])
    with zipfile.ZipFile(paths["zip_bomb.csv.zip"]) as archive:
        (info,) = archive.infolist()
        assert info.file_size / info.compress_size > 100
    for name, path in paths.items():
        ratio = MBC.BOMB_BYTES / path.stat().st_size
        assert ratio > 100, (name, ratio)
    # the gzip bomb hides from a look at the head of the file: no NUL byte in its first 16 KiB
    assert b"\x00" not in paths["gzip_bomb.csv.gz"].read_bytes()[:16384]


# ------------------------------------------------------------------------------------------------
# every input through every entry point


def _cases(group: str) -> list[str]:
    return [f.name for f in MBC.CORPUS if f.group == group]


def _message(call: dict[str, Any]) -> str:
    return f"{call.get('message', '')}\n{call.get('stdout', '')}"


def _assert_common(name: str, record: dict[str, Any]) -> None:
    """No traceback, within the bounds, nothing lost."""
    assert record["sha256_before"] == record["sha256_after"], f"{name} was modified"
    assert record["chain_ok"], f"the audit chain no longer verifies after {name}"
    for point, call in record["calls"].items():
        where = f"{name} / {point}"
        assert call["outcome"] in ("ok", "fail", "error"), (
            f"{where}: {call['outcome']}: {call.get('message')}\n{call.get('traceback', '')}"
        )
        assert "Traceback" not in _message(call), f"{where}: a traceback reached the user"
        assert call["seconds"] <= TIME_BOUND_S, f"{where}: {call['seconds']} s, above the {TIME_BOUND_S} s bound"
        assert call["peak_mib"] <= MEMORY_BOUND_MIB, (
            f"{where}: {call['peak_mib']} MiB, above the {MEMORY_BOUND_MIB} MiB bound"
        )
        if call["outcome"] == "error":
            assert not call["rows_added"], f"{where}: an error left ledger rows {call['rows_added']}"
            if point != "reader" and point != "suite":
                assert call["exit"] == 2, where
                assert call.get("message", "").startswith(("charter: error: ", "invalid ")), (
                    f"{where}: {call.get('message')!r}"
                )
        if point == "pseudonymise":
            assert not call["leftovers"], f"{where}: partial output {call['leftovers']}"
            assert call["output_exists"] == (call["outcome"] == "ok"), where
            assert call["record_exists"] == call["output_exists"], f"{where}: a copy without its key record"


@pytest.mark.parametrize("name", _cases("data"))
def test_data_file(harness: dict[str, Any], name: str) -> None:
    expect, record = DATA[name], harness["results"]["cases"][name]
    calls = record["calls"]
    _assert_common(name, record)
    file_name = Path(harness["cases"][name]["path"]).name
    reader = calls["reader"]
    if expect.reader == "ok":
        assert reader["outcome"] == "ok", f"{name}: {reader.get('message')}"
        assert reader["columns"][0] == "request_id", "a BOM or a wrong dialect ended up in the first column's name"
        assert calls["scan"]["outcome"] in expect.scan, calls["scan"]
        assert calls["pseudonymise"]["outcome"] == "ok", calls["pseudonymise"]
    else:
        assert (reader["outcome"], reader.get("kind")) == ("error", expect.reader), reader
        for point in ("reader", "scan", "pseudonymise"):
            call = calls[point]
            assert call["outcome"] == "error", (point, call)
            assert file_name in call["message"], f"{point}: the message does not name the file: {call['message']!r}"
            assert re.search(expect.hint, call["message"]), f"{point}: {call['message']!r} does not say {expect.hint!r}"
    if "validate" in calls:
        validate = calls["validate"]
        assert validate["outcome"] == expect.validate, validate
        verdict = validate["json"]
        assert verdict["check"] == "quality"
        assert verdict["verdict"] == ("fail" if expect.validate == "fail" else verdict["verdict"])
        if expect.reader != "ok":  # an unreadable delivery is a failing verdict that says why
            assert f"the data cannot be read ({expect.reader})" in verdict["summary"], verdict["summary"]
            assert validate["rows_added"].get("check_results") == 1
    assert calls["hash"]["outcome"] == expect.hash, calls["hash"]
    if expect.hash == "ok":
        assert calls["hash"]["rows_added"].get("manifests") == 1
        assert calls["verify"]["outcome"] == "ok"
        assert calls["verify"]["json"]["outcome"] == "intact"
    else:  # nothing to register: said so, and no manifest
        assert file_name in calls["hash"]["message"], calls["hash"]
        assert re.search(r"is empty \(0 bytes\)|is not a readable Parquet file", calls["hash"]["message"]), calls[
            "hash"
        ]
        assert "verify" not in calls


@pytest.mark.parametrize("name", _cases("policy"))
def test_policy_file(harness: dict[str, Any], name: str) -> None:
    expected, hint = POLICIES[name]
    record = harness["results"]["cases"][name]
    calls = record["calls"]
    _assert_common(name, record)
    assert calls["policy"]["outcome"] == expected, calls["policy"]
    if expected == "error":
        for point in POLICY_ENTRY_POINTS:
            assert calls[point]["outcome"] == "error", (point, calls[point])
            assert name in _message(calls[point]), (point, _message(calls[point]))
            assert re.search(hint, _message(calls[point])), (point, _message(calls[point]))
    else:
        assert calls["policy_scan"]["outcome"] in ("ok", "fail")
    if name == "policy_missing_suite.yaml":
        quality = calls["policy_quality"]
        assert quality["outcome"] == "error", quality
        assert re.search(
            r"no_such_suite\.json: <file>: suite file not found; check datasets\[\]\.suite", quality["message"]
        ), quality
    if name == "policy_control.yaml":
        assert calls["policy_quality"]["outcome"] in ("ok", "fail")
    if name == "policy_python_tag.yaml":
        assert not Path("/tmp/charter-pwned").exists(), "a YAML tag ran code"


@pytest.mark.parametrize("name", _cases("suite"))
def test_suite_file(harness: dict[str, Any], name: str) -> None:
    expected, hint = SUITES[name]
    record = harness["results"]["cases"][name]
    calls = record["calls"]
    _assert_common(name, record)
    assert calls["suite"]["outcome"] == expected, calls["suite"]
    quality = calls["suite_quality"]
    if expected == "error":
        assert re.search(hint, calls["suite"]["message"]), calls["suite"]["message"]
        assert quality["outcome"] == "error", quality
        assert name in quality["message"], quality
        assert re.search(hint, quality["message"]), quality
    else:
        assert quality["outcome"] == "fail", quality
        assert re.search(hint, quality["stdout"]), quality


# ------------------------------------------------------------------------------------------------
# what the project writes: formulas neutralised, HTML escaped


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def test_formula_cells_are_neutralised_in_the_pseudonymised_csv(harness: dict[str, Any]) -> None:
    output = Path(harness["cases"]["formula_injection.csv"]["output"])
    with output.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    header, body = rows[0], rows[1:]
    assert len(body) == 120, "a cell holding a carriage return split its row"
    cells = [cell for row in body for cell in row]
    dangerous = [c for c in cells if c.startswith(FORMULA_START) and not re.fullmatch(r"[+-]?\d+([.,]\d+)?", c)]
    assert not dangerous, dangerous[:5]
    labels = [row[header.index("category")] for row in body[:7]]
    assert labels == ["'" + f for f in MBC.FORMULAS], "the label column keeps its text, behind a leading quote"
    channels = {row[header.index("channel")] for row in body}
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in channels


def test_neutralisation_leaves_numbers_and_plain_text_alone() -> None:
    from charter_guardrails.checks.privacy.pseudonymise import neutralise_formula

    for value in ("-3,5", "+12", "-0.25", "1e-3", "voirie", "", None, 3.5, "<PERSON_0123456789>"):
        assert neutralise_formula(value) == value or (value != value)
    for value in ("=1+1", "+1+cmd", "-2+3", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("x")'):
        assert neutralise_formula(value) == "'" + value


def test_html_reports_escape_what_the_input_holds(harness: dict[str, Any]) -> None:
    reports = harness["home"] / "reports"
    pages = [p for p in reports.rglob("*.html")]
    assert any("bad__html_injection" in str(p) for p in pages), "the scan and quality reports of the HTML input exist"
    assert any("data_docs" in str(p) and "bad__html_injection" in str(p) for p in pages), "Data Docs were built"
    raw = [MBC.HTML_PAYLOAD, MBC.HTML_COLUMN, "<script>alert", "<img src=x"]  # escaped, "onerror=alert" is inert text
    leaks = [
        (str(p.relative_to(reports)), r)
        for p in pages
        for r in raw
        if r in p.read_text(encoding="utf-8", errors="replace")
    ]
    assert not leaks, leaks[:5]
    report = next(p for p in pages if "bad__html_injection" in str(p) and p.name.startswith("personal_data__"))
    # the report is a Jinja2 template, autoescaped: markupsafe writes a double quote as &#34;
    assert "&lt;img src=x onerror=alert(&#34;charter&#34;)&gt;" in report.read_text(encoding="utf-8"), (
        "the column is listed, escaped"
    )


def test_delivery_outside_the_data_folder_is_refused(charter_home: Path) -> None:
    from charter_guardrails.core.errors import ConfigError
    from charter_guardrails.core.policy import UseCasePolicy

    dataset = UseCasePolicy.from_file(POLICY).dataset("training")
    for path in ("../../etc/passwd", "/etc/passwd", "citizen_requests/../../../etc/passwd"):
        with pytest.raises(ConfigError, match=r"outside the data folder|must not contain '..'|leaves the data folder"):
            dataset.delivery(path)


def test_bounds_and_figures(harness: dict[str, Any], record_property: Any) -> None:
    """The largest time and memory any entry point took on any input, against the stated bounds."""
    calls = [
        (name, point, call) for name, rec in harness["results"]["cases"].items() for point, call in rec["calls"].items()
    ]
    slowest = max(calls, key=lambda c: c[2]["seconds"])
    heaviest = max(calls, key=lambda c: c[2]["peak_mib"])
    summary = (
        f"{len(harness['results']['cases'])} inputs, {len(calls)} entry-point calls; slowest {slowest[0]}/{slowest[1]} "
        f"{slowest[2]['seconds']} s (bound {TIME_BOUND_S} s); "
        f"heaviest {heaviest[0]}/{heaviest[1]} {heaviest[2]['peak_mib']} MiB "
        f"(bound {MEMORY_BOUND_MIB} MiB)"
    )
    record_property("bad_inputs", summary)
    print(summary)
    assert slowest[2]["seconds"] <= TIME_BOUND_S
    assert heaviest[2]["peak_mib"] <= MEMORY_BOUND_MIB
