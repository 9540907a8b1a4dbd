"""``make bench-pii``: our column scanner against Presidio's ``BatchAnalyzerEngine``, same data, same run.

Table: ``BENCH_ROWS`` rows (default 1,000,000) x 10 columns, 2 of them free text (citizen messages
and agent comments carrying names, phones, e-mails, NIRs), built from Faker ``fr_FR`` pools with a
fixed seed. Timed, in this order:

1. our scanner, sampling mode (median of 3 runs);
2. our scanner, exhaustive mode (every distinct value: vectorised RE2 plan, regex + checksums, and
   NER with ``nlp.pipe`` in one worker process per core), on the whole table, or on its first
   ``BENCH_EXHAUSTIVE_ROWS`` rows when set (then rates per row are compared);
3. the baseline: ``BatchAnalyzerEngine.analyze_dict`` (our French analyzer: same recognizers, spaCy
   ``fr_core_news_sm``) over every cell of the first ``BASELINE_ROWS`` rows (default 20,000; the
   issue allows fewer at full size because the baseline runs at ~15-30 rows/s), extrapolated per row.

Prints the speed-ups by wall time and by CPU time (this process and its NER workers: on a shared,
noisy machine the load changes between phases, CPU time does not depend on it), the identifier
recall of the exhaustive run, the peak RSS and the machine's load average at the start and the end.
``BENCH_ROWS=20000 BASELINE_ROWS=300`` is the CI smoke size. Exit status 0 when the targets are met:
exhaustive >= 10x (wall or CPU) with every identifier recall >= 0.99, column recall >= 0.99 and
precision >= 0.95, and, at the full 1,000,000 rows, sampling >= 1000x.
"""

from __future__ import annotations

import logging
import os
import random
import resource
import statistics
import sys
import time
from typing import Any

SEED = 20260505
#: The issue's table size. Sampling reads the same n rows whatever the table, so its speed-up grows with
#: the table: its target (>= 1000x) is judged at this size only; the others at any size.
FULL_ROWS = 1_000_000
IDENTIFIER_COLUMNS = {"telephone": "FR_PHONE", "email": "EMAIL_ADDRESS", "nir": "FR_NIR"}
PII_COLUMNS = {"nom", "telephone", "email", "nir", "message", "commentaire_agent"}


def peak_rss_mb() -> tuple[float, float]:
    """(this process, its largest finished child) peak resident set size in MiB."""
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (spaCy's NER workers): fair on a shared, noisy machine."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def load_average() -> str:
    """The 1, 5 and 15-minute load averages, and the cores: how shared the machine was."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def make_table(rows: int, seed: int = SEED) -> tuple[Any, dict[str, int]]:
    """The benchmark table and, per free-text column, how many rows carry a phone / e-mail / NIR."""
    import pandas as pd
    from faker import Faker
    from stdnum.fr import nir

    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    pool = 20_000
    names = [fake.name() for _ in range(pool)]
    emails = [fake.email() for _ in range(pool)]
    streets = [fake.street_name() for _ in range(2000)]

    def phone() -> str:
        d = [rng.choice("67")] + [str(rng.randint(0, 9)) for _ in range(8)]
        pairs = " ".join("".join(d[i : i + 2]) for i in range(1, 9, 2))
        return rng.choice([f"0{d[0]} {pairs}", f"+33 {d[0]} {pairs}", f"0{d[0]}" + pairs.replace(" ", "")])

    def nir_value() -> str:
        body = (
            f"{rng.choice('12')}{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}"
            f"13{rng.randint(1, 120):03d}{rng.randint(1, 999):03d}"
        )
        n = body + nir.calc_check_digits(body)
        return f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}"

    topics = [
        "le lampadaire est en panne",
        "la collecte n'est pas passée",
        "un nid-de-poule abîme la chaussée",
        "des dépôts sauvages s'accumulent",
        "le bus 21 ne passe plus",
        "une fuite d'eau inonde le trottoir",
    ]
    counts = {"message:FR_PHONE": 0, "message:EMAIL_ADDRESS": 0, "message:FR_NIR": 0, "commentaire_agent:FR_PHONE": 0}
    messages, comments = [], []
    for _ in range(rows):
        text = f"Bonjour, {rng.choice(topics)} au {rng.randint(1, 200)} {rng.choice(streets)}."
        r = rng.random()
        if r < 0.2:
            text += f" Je suis {rng.choice(names)}, rappelez-moi au {phone()}."
            counts["message:FR_PHONE"] += 1
        elif r < 0.3:
            text += f" Écrivez-moi à {rng.choice(emails)}."
            counts["message:EMAIL_ADDRESS"] += 1
        elif r < 0.33:
            text += f" Mon numéro de sécurité sociale est le {nir_value()}."
            counts["message:FR_NIR"] += 1
        messages.append(text)
        c = rng.random()
        if c < 0.1:
            comments.append(f"Usager rappelé au {phone()}, intervention programmée.")
            counts["commentaire_agent:FR_PHONE"] += 1
        else:
            comments.append(
                rng.choice(
                    [
                        "Transmis au service voirie.",
                        "Dossier clos après intervention.",
                        "En attente du prestataire.",
                        f"Signalement doublon de la demande {rng.randint(1000, 99999)}.",
                    ]
                )
            )
    frame = pd.DataFrame(
        {
            "request_id": [f"DEM-{i:08d}" for i in range(rows)],
            "received_at": [f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" for _ in range(rows)],
            "nom": [rng.choice(names) for _ in range(rows)],
            "telephone": [phone() for _ in range(rows)],
            "email": [rng.choice(emails) for _ in range(rows)],
            "nir": [nir_value() for _ in range(rows)],
            "arrondissement": [f"132{rng.randint(1, 16):02d}" for _ in range(rows)],
            "montant": [f"{rng.uniform(0, 5000):.2f}".replace(".", ",") for _ in range(rows)],
            "message": messages,
            "commentaire_agent": comments,
        }
    )
    return frame, counts


def main() -> int:
    logging.basicConfig(
        level=logging.INFO if os.environ.get("BENCH_VERBOSE") else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    rows = int(os.environ.get("BENCH_ROWS", "1000000"))
    baseline_rows = min(int(os.environ.get("BASELINE_ROWS", "20000")), rows)
    exhaustive_rows = min(int(os.environ.get("BENCH_EXHAUSTIVE_ROWS", str(rows))), rows)
    from charter_guardrails.checks.privacy.analyzer import get_analyzer, get_ner_pipeline
    from charter_guardrails.checks.privacy.report import ScanOptions
    from charter_guardrails.checks.privacy.scanner import scan_frame

    started = time.monotonic()
    frame, counts = make_table(rows)
    print(
        f"table: {rows} rows x {frame.shape[1]} columns (2 free text), built in {time.monotonic() - started:.0f} s; "
        f"peak RSS {peak_rss_mb()[0]:.0f} MiB; load average {load_average()}",
        flush=True,
    )
    get_ner_pipeline()  # model loading is not scanning: load once before timing, like the baseline's engine
    sampling_times, sampling_cpus = [], []
    for _ in range(3):
        t, c = time.monotonic(), cpu_seconds()
        sampled = scan_frame(frame, ScanOptions(mode="sampling"), source="bench")
        sampling_times.append(time.monotonic() - t)
        sampling_cpus.append(cpu_seconds() - c)
    sampling_s, sampling_cpu = statistics.median(sampling_times), statistics.median(sampling_cpus)
    sampled_found = {c.name for c in sampled.columns if c.findings}
    print(
        f"ours, sampling:   {sampling_s:8.2f} s (median of 3: {', '.join(f'{t:.2f}' for t in sampling_times)}); "
        f"{sampled.scanned_rows} rows; columns with PII {sorted(sampled_found)}",
        flush=True,
    )

    part = frame if exhaustive_rows == rows else frame.head(exhaustive_rows)
    t, c = time.monotonic(), cpu_seconds()
    full = scan_frame(part, ScanOptions(mode="exhaustive"), source="bench")
    exhaustive_s, exhaustive_cpu = time.monotonic() - t, cpu_seconds() - c
    print(
        f"ours, exhaustive: {exhaustive_s:8.2f} s on {len(part)} rows ({len(part) / exhaustive_s:,.0f} rows/s); "
        f"peak RSS {peak_rss_mb()[0]:.0f} MiB, NER workers {peak_rss_mb()[1]:.0f} MiB",
        flush=True,
    )
    recall = {}
    for column, entity in IDENTIFIER_COLUMNS.items():
        finding = full.column(column).finding(entity)
        recall[f"{column}:{entity}"] = (finding.count if finding else 0) / len(part)
    if exhaustive_rows == rows:  # embedded identifiers: labelled counts are for the whole table
        for key, expected in counts.items():
            column, entity = key.split(":")
            finding = full.column(column).finding(entity)
            recall[key] = min((finding.count if finding else 0) / expected, 1.0) if expected else 1.0

    from presidio_analyzer import BatchAnalyzerEngine

    engine = BatchAnalyzerEngine(analyzer_engine=get_analyzer())
    head = frame.head(baseline_rows)
    t, c = time.monotonic(), cpu_seconds()
    results = list(engine.analyze_dict({c: head[c].tolist() for c in head.columns}, language="fr", batch_size=256))
    baseline_s, baseline_cpu = time.monotonic() - t, cpu_seconds() - c
    per_row, per_row_cpu = baseline_s / baseline_rows, baseline_cpu / baseline_rows
    print(
        f"baseline: BatchAnalyzerEngine.analyze_dict, {baseline_rows} rows x {len(results)} columns"
        f" in {baseline_s:.1f} s "
        f"({baseline_rows / baseline_s:.1f} rows/s); extrapolated to {rows} rows: {per_row * rows / 3600:.2f} h",
        flush=True,
    )

    sampling_speedup = per_row * rows / sampling_s
    exhaustive_speedup = per_row * len(part) / exhaustive_s
    sampling_speedup_cpu = per_row_cpu * rows / sampling_cpu
    exhaustive_speedup_cpu = per_row_cpu * len(part) / exhaustive_cpu
    print(
        f"CPU seconds: sampling {sampling_cpu:.1f}, exhaustive {exhaustive_cpu:.1f}, baseline {baseline_cpu:.1f} "
        f"(wall: {sampling_s:.1f}, {exhaustive_s:.1f}, {baseline_s:.1f})"
    )
    rss_self, rss_children = peak_rss_mb()
    column_recall = len(sampled_found & PII_COLUMNS) / len(PII_COLUMNS)
    column_precision = len(sampled_found & PII_COLUMNS) / len(sampled_found) if sampled_found else 1.0
    ident_ok = all(r >= 0.99 for r in recall.values())
    print()
    sampling_target = (
        "target >= 1000" if rows >= FULL_ROWS else f"target >= 1000 at {FULL_ROWS:,} rows, not judged at {rows:,}"
    )
    print(
        f"speed-up, sampling:   {sampling_speedup:12,.0f} x wall, {sampling_speedup_cpu:12,.0f} x CPU"
        f"  ({sampling_target})  "
        f"column recall {column_recall:.2f}, precision {column_precision:.2f}"
    )
    print(
        f"speed-up, exhaustive: {exhaustive_speedup:12,.1f} x wall, {exhaustive_speedup_cpu:12,.1f} x CPU"
        "  (target >= 10)" + ("" if len(part) == rows else f"  (per row, exhaustive on the first {len(part)} rows)")
    )
    print(
        "identifier recall (exhaustive): "
        + ", ".join(f"{k} {v:.4f}" for k, v in recall.items())
        + ("  OK" if ident_ok else "  MISSED")
    )
    print(
        f"peak RSS: {rss_self:.0f} MiB (process), {rss_children:.0f} MiB (largest NER worker);"
        f" load average {load_average()}"
    )
    # On a shared machine the load changes between phases: wall-time ratios are noisy, CPU-time ratios are not.
    sampling_ok = rows < FULL_ROWS or max(sampling_speedup, sampling_speedup_cpu) >= 1000
    met = (
        sampling_ok
        and max(exhaustive_speedup, exhaustive_speedup_cpu) >= 10
        and ident_ok
        and column_recall >= 0.99
        and column_precision >= 0.95
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
