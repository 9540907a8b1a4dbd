"""The model versions trained on data that held the person: listed for the DPO's decision on retraining.

Erasing rows from files does not take the person out of a model already trained on them. The ledger says
which data each version saw, in two ways, and a version is listed when either holds:

- its refresh run verified the training file against a signed manifest: the integrity result of the run
  records the Merkle root, and that root is the root of a manifest registered for a file that holds the
  person (any manifest of that path, active or superseded: the run may predate the last registration);
- its refresh run wrote its pseudonymised working copy under ``$CHARTER_HOME/work/<use case>/<run>/``, and
  that copy holds the person.

Nothing is retrained or withdrawn here: the list goes to the DPO, who decides (retraining, or a documented
reason not to), and the erasure's audit event records it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from charter_guardrails.dsr.places import Place


@dataclass(frozen=True)
class TrainedVersion:
    use_case: str
    version: int
    run_id: str | None
    status: str
    #: Why it is listed: ``training file root`` and/or ``working copy``.
    basis: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "use_case": self.use_case,
            "version": self.version,
            "run_id": self.run_id,
            "status": self.status,
            "basis": list(self.basis),
        }


def run_folder(run_id: str) -> str:
    """The folder name of a run's working files, as the refresh DAG names it (the run id, safe as a file name)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


def covers(location: Path, path: Path) -> bool:
    """Whether a manifest registered at ``location`` (a file, or a folder of Parquet files) covers ``path``.

    A location outside the current data folder and ``CHARTER_HOME`` (a manifest registered before the folder
    moved, or in the install this one was copied from) is matched by its last two parts, the use case's folder
    and the file name, which the data folder keeps.
    """
    location, path = location.resolve(), path.resolve()
    if location == path or (path.is_relative_to(location) and location.is_dir()):
        return True
    settings = get_settings()
    elsewhere = not any(location.is_relative_to(root.resolve()) for root in (settings.data_dir, settings.home))
    return elsewhere and location.parts[-2:] == path.parts[-2:]


def manifest_roots(session: Session, use_case: str, paths: Iterable[Path]) -> dict[Path, set[str]]:
    """The Merkle roots of every manifest (active or superseded) registered for each of ``paths``."""
    from sqlalchemy import select

    from charter_guardrails.ledger.models import DatasetRecord, Manifest

    wanted = [p.resolve() for p in paths]
    roots: dict[Path, set[str]] = {}
    rows = session.scalars(
        select(Manifest)
        .join(DatasetRecord, DatasetRecord.id == Manifest.dataset_id)
        .where(DatasetRecord.use_case == use_case)
    )
    for row in rows:
        location = Path(str((row.document or {}).get("location", "")))
        if any(covers(location, p) for p in wanted):
            roots.setdefault(location, set()).add(row.merkle_root)
    return roots


def _training_roots(session: Session, use_case: str, run_id: str) -> set[str]:
    """The roots the run's integrity results recorded (the file the run verified before training on it)."""
    from sqlalchemy import select

    from charter_guardrails.ledger.models import CheckResultRecord, CheckRun

    results = session.scalars(
        select(CheckResultRecord)
        .join(CheckRun, CheckRun.id == CheckResultRecord.check_run_id)
        .where(CheckRun.use_case == use_case, CheckRun.run_id == run_id, CheckResultRecord.check == "integrity")
    )
    return {str(r.evidence[k]) for r in results for k in ("merkle_root", "actual_root") if (r.evidence or {}).get(k)}


def trained_on(session: Session, places: list[Place]) -> list[TrainedVersion]:
    """The versions of the use cases of ``places`` (the files that hold the person) trained on them."""
    from charter_guardrails.decision.model_registry import versions

    work = get_settings().home / "work"
    out: list[TrainedVersion] = []
    for use_case in sorted({p.use_case for p in places}):
        mine = [p for p in places if p.use_case == use_case]
        roots = set().union(
            *manifest_roots(session, use_case, [p.path for p in mine if p.kind != "working_copy"]).values()
        )
        copy_runs = {
            p.path.resolve().relative_to((work / use_case).resolve()).parts[0]
            for p in mine
            if p.kind == "working_copy" and p.path.resolve().is_relative_to((work / use_case).resolve())
        }
        for version in versions(session, use_case):
            basis = []
            if version.run_id and roots & _training_roots(session, use_case, version.run_id):
                basis.append("training file root")
            if version.run_id and run_folder(version.run_id) in copy_runs:
                basis.append("working copy")
            if basis:
                out.append(TrainedVersion(use_case, version.version, version.run_id, version.status, tuple(basis)))
    return out
