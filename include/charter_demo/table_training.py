"""``citizen_requests``' training rows as a table of the data database: the sample of ``make run`` and the tests.

:func:`load_training_table` writes the sample training CSV's rows into a table (typed as the policy declares, with
a surrogate primary key ``row_id`` going by tens), and :func:`table_policies` / :func:`table_suites` write copies of
a policies folder and of a suites folder in which the training dataset is that table (``format: sql``; ``row_id``
declared as a non-personal identifier and added to the suite's exact column set). Everything else is the shipped
configuration, so that the guardrails' verdicts on the table can be compared with theirs on the file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

USE_CASE = "citizen_requests"
#: The table the training rows are loaded into.
TABLE = "citizen_requests_training"
#: The surrogate key (the request number is personal data, so it cannot order a manifest's key ranges).
KEY = "row_id"
_STRINGS = ("request_id", "arrondissement", "channel", "age_band", "category")


def with_row_ids(source: Path, target: Path, dataset: Any) -> None:
    """``source`` (the sample training CSV) with a first column ``row_id`` (10, 20, ...), in its own dialect."""
    from charter_guardrails.readers.files import read_csv

    raw = read_csv(source, dataset.csv)
    raw.insert(0, KEY, [str(10 * i + 10) for i in range(len(raw))])
    raw.to_csv(target, sep=dataset.csv.separator, index=False, encoding="utf-8")


def load_training_table(url: str, csv: Path, dataset: Any, table_name: str = TABLE) -> int:
    """The rows of ``csv`` (with ``row_id``), typed as ``dataset`` declares them, into a new table; the row count."""
    import pandas as pd
    from charter_guardrails.readers.files import apply_types, read_dataset
    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, create_engine

    frame = apply_types(read_dataset(dataset, csv), dataset)[0]
    frame["received_at"] = frame["received_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    table = Table(
        table_name,
        MetaData(),
        Column(KEY, Integer, primary_key=True, autoincrement=False),
        Column("request_id", String(20)),
        Column("received_at", DateTime),
        Column("message", Text),
        *(Column(name, String(32)) for name in _STRINGS[1:]),
    )
    rows = [
        {k: (None if v is None or v is pd.NA or (not isinstance(v, str) and pd.isna(v)) else v) for k, v in r.items()}
        for r in frame.astype(object).to_dict("records")
    ]
    for row in rows:
        row[KEY] = int(row[KEY])
        if row["received_at"] is not None:
            row["received_at"] = row["received_at"].to_pydatetime()
    engine = create_engine(url)
    try:
        table.drop(engine, checkfirst=True)
        table.create(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
    finally:
        engine.dispose()
    return len(rows)


def table_policies(source: Path, target: Path, table_name: str = TABLE) -> Path:
    """A copy of the policies folder ``source`` in which ``citizen_requests.training`` is the table."""
    import yaml

    shutil.copytree(source, target, dirs_exist_ok=True)
    path = target / f"{USE_CASE}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    training = next(d for d in document["datasets"] if d["id"] == "training")
    for key in ("path", "csv", "uri", "conn_id"):
        training.pop(key, None)
    training.update({"format": "sql", "table": table_name})
    training["columns"].insert(0, {"name": KEY, "role": "identifier", "type": "integer", "nullable": False})
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def table_suites(source: Path, target: Path) -> Path:
    """A copy of the suites folder ``source``, the training suite's exact column set with ``row_id``."""
    shutil.copytree(source, target, dirs_exist_ok=True)
    suite_path = target / f"{USE_CASE}.training.json"
    suite = json.loads(suite_path.read_text(encoding="utf-8"))
    columns = next(e for e in suite["expectations"] if e["type"] == "expect_table_columns_to_match_set")
    if KEY not in columns["kwargs"]["column_set"]:
        columns["kwargs"]["column_set"].insert(0, KEY)
    suite_path.write_text(json.dumps(suite, indent=2, ensure_ascii=False), encoding="utf-8")
    return target
