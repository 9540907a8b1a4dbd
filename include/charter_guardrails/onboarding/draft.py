"""Drafting a use case from a data file: read, profile, scan for personal data, draft, write every file or none.

:func:`draft_use_case` computes the drafts (nothing is written); :func:`write_drafts` writes them, refusing to
overwrite an existing file unless asked. A suite is loaded into Great Expectations before anything is written, so a
drafted suite that GX would refuse is never left behind.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.policy import check_use_case_id, open_todos
from charter_guardrails.core.policy_models import ColumnRole, PersonalDataCategory
from charter_guardrails.onboarding.columns import ColumnDraft, default_max_rows, draft_columns
from charter_guardrails.onboarding.profile import FREE_TEXT_MIN_WORDS, FileProfile, Progress, profile_frame, read_file
from charter_guardrails.onboarding.skeleton import DatasetPaths, policy_yaml
from charter_guardrails.onboarding.suite_draft import draft_suite, suite_json

if TYPE_CHECKING:
    import pandas as pd

    from charter_guardrails.checks.privacy.report import ScanReport

#: Stage messages (``charter init`` prints them on stderr).
Say = Callable[[str], None]


@dataclass
class Drafts:
    """What ``charter init`` writes, and what its summary tells."""

    use_case: str
    profile: FileProfile
    columns: list[ColumnDraft]
    #: file -> its text, in the order they are written
    files: dict[Path, str]
    #: the dataset path declared, relative to the data folder
    data_path: str
    #: the command that copies the file into the data folder, when it is elsewhere
    copy_command: str | None
    todos: list[tuple[str, str]] = field(default_factory=list)

    @property
    def policy_file(self) -> Path:
        return next(iter(self.files))

    @property
    def personal_columns(self) -> list[ColumnDraft]:
        return [c for c in self.columns if c.personal_data is not PersonalDataCategory.NONE]


def draft_use_case(
    use_case: str,
    source: Path,
    *,
    policies_dir: Path,
    expectations_dir: Path,
    data_dir: Path,
    label: str | None = None,
    progress: Progress | None = None,
    say: Say | None = None,
) -> Drafts:
    """The drafted policy and suites of ``use_case`` from the file ``source``; nothing is written.

    :raises ConfigError: an invalid use-case id, an unknown ``label`` column.
    :raises DatasetReadError: the readers' error for a bad file.
    """
    check_use_case_id(use_case)
    frame, dialect = read_file(source, progress)
    if label is not None and label not in [str(c) for c in frame.columns]:
        raise ConfigError(
            f"--label {label!r} is not a column of {source}; its columns: {[str(c) for c in frame.columns]}"
        )
    (say or _quiet)(f"profiling {len(frame):,} rows and {frame.shape[1]} columns")
    profile = profile_frame(frame, source, dialect)
    scan = scan_personal_data(frame, profile, source, say or _quiet)
    columns = draft_columns(profile, scan, label)
    data_path, copy_command = dataset_path(use_case, source, data_dir)
    paths = DatasetPaths(
        training=data_path,
        inference=f"{use_case}/inference_batch{_suffix(source)}",
        notes=(f"TODO copy the file there: {copy_command}",) if copy_command else (),
    )
    policy_text = policy_yaml(use_case, profile, columns, label, paths)
    max_rows = default_max_rows(profile.rows)
    inference = [c for c in columns if c.role is not ColumnRole.LABEL]
    files = {
        policies_dir / f"{use_case}.yaml": policy_text,
        expectations_dir / f"{use_case}.training.json": suite_json(
            draft_suite(use_case, "training", columns, min_rows=max(1, profile.rows // 10), max_rows=max_rows)
        ),
        expectations_dir / f"{use_case}.inference.json": suite_json(
            draft_suite(use_case, "inference", inference, min_rows=1, max_rows=max_rows)
        ),
    }
    return Drafts(
        use_case=use_case,
        profile=profile,
        columns=columns,
        files=files,
        data_path=data_path,
        copy_command=copy_command,
        todos=open_todos(yaml.safe_load(policy_text)),
    )


def _quiet(_: str) -> None:
    return None


def _suffix(source: Path) -> str:
    return ".parquet" if source.suffix.lower() == ".parquet" or source.is_dir() else ".csv"


def scan_personal_data(frame: pd.DataFrame, profile: FileProfile, source: Path, say: Say) -> ScanReport:
    """The personal data of each column, by the project's scanner on a random sample of rows (counts only)."""
    from charter_guardrails.checks.privacy.report import ScanOptions, sample_size
    from charter_guardrails.checks.privacy.scanner import scan_frame

    options = ScanOptions(
        mode="sampling",
        free_text_columns=frozenset(c.name for c in profile.columns if c.median_words >= FREE_TEXT_MIN_WORDS),
    )
    sampled = min(len(frame), sample_size(options.min_detectable_rate, options.confidence))
    say(f"scanning {sampled:,} sampled rows for personal data")
    return scan_frame(frame, options, source=source.name)


def dataset_path(use_case: str, source: Path, data_dir: Path) -> tuple[str, str | None]:
    """The dataset's path relative to the data folder, and the command that copies the file there when it is not
    already inside it."""
    resolved = source.resolve()
    root = data_dir.resolve()
    if resolved.is_relative_to(root):
        return resolved.relative_to(root).as_posix(), None
    name = source.name if re.fullmatch(r"[\w.\-]+", source.name) else f"data{_suffix(source)}"
    relative = f"{use_case}/{name}"
    target = root / relative
    copy = "-r " if source.is_dir() else ""
    return relative, (
        f"mkdir -p {shlex.quote(str(target.parent))} && cp {copy}{shlex.quote(str(source))} {shlex.quote(str(target))}"
    )


def existing(drafts: Drafts) -> list[Path]:
    return [path for path in drafts.files if path.exists()]


def write_drafts(drafts: Drafts, *, force: bool = False) -> list[Path]:
    """Write every drafted file, or none: existing files are refused unless ``force``; each suite must load into
    Great Expectations; the files are written beside their targets first, then renamed into place."""
    taken = existing(drafts)
    if taken and not force:
        names = ", ".join(str(p) for p in taken)
        raise ConfigError(f"{names} already exist(s); nothing was written. Use --force to overwrite")
    temporary: dict[Path, Path] = {}
    try:
        for path, text in drafts.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.{os.getpid()}.draft")
            temp.write_text(text, encoding="utf-8")
            temporary[path] = temp
        for path, temp in temporary.items():
            if path.suffix == ".json":
                _check_suite(temp, path)
        for path, temp in temporary.items():
            temp.replace(path)
    finally:
        for temp in temporary.values():
            temp.unlink(missing_ok=True)
    return list(drafts.files)


def _check_suite(temp: Path, path: Path) -> None:
    from charter_guardrails.checks.quality.suites import load_suite
    from charter_guardrails.core.errors import SuiteError

    try:
        load_suite(temp)
    except SuiteError as exc:
        raise ConfigError(
            f"internal error: the drafted suite {path.name} is refused ({exc.reason}); nothing written"
        ) from None


def summary(drafts: Drafts) -> dict[str, Any]:
    """What was drafted, for the command's output: counts and names, never a value."""
    return {
        "use_case": drafts.use_case,
        "files": [str(p) for p in drafts.files],
        "rows": drafts.profile.rows,
        "columns": [
            {
                "name": c.name,
                "role": c.role.value,
                "type": c.type.value,
                "nullable": c.profile.nulls > 0,
                "personal_data": c.personal_data.value,
                "entities": {entity: count for entity, count in c.entities},
            }
            for c in drafts.columns
        ],
        "scanned_rows": drafts.columns[0].scanned_rows if drafts.columns else 0,
        "data_path": drafts.data_path,
        "copy_command": drafts.copy_command,
        "todos": [{"key": key, "text": text} for key, text in drafts.todos],
        "next": f"charter policy validate {shlex.quote(str(drafts.policy_file))}",
    }
