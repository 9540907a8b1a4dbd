"""The files the view serves, and the only folders it serves them from.

Model cards and AI labels come from the models folder (``$CHARTER_HOME/models``), reports and Data Docs from
the reports folder (``CHARTER_REPORTS_DIR``), and nothing from the keys or audit folders, whatever a ledger row
says: a path is resolved (symlinks included) and must lie inside its folder
(:func:`charter_guardrails.core.stored_paths.confined`). A row that anyone could edit (``card_path``,
``report_path``) therefore never opens the signing key. Pages name a file by its name, never by a server path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from charter_guardrails.core.settings import get_settings
from charter_guardrails.core.stored_paths import confined, from_stored
from charter_guardrails.reporting.scrubbing import mask_personal_values, mask_tree


def card_file(card_path: str | None) -> Path | None:
    """The model card a version's ``card_path`` names, if it is a file inside the models folder."""
    settings = get_settings()
    stored = from_stored(card_path, settings.models_dir)
    target = confined(stored, settings.models_dir, settings) if stored is not None else None
    return target if target is not None and target.is_file() else None


def model_file(card_path: str | None, name: str) -> Path | None:
    """A file of the model card's folder (the card, the AI label), inside the models folder; else ``None``."""
    card = card_file(card_path)
    if card is None:
        return None
    target = confined(card.parent / name, get_settings().models_dir)
    return target if target is not None and target.parent == card.parent and target.is_file() else None


def report_file(path: str) -> Path | None:
    """A report or Data Docs file under the reports folder (``path`` relative to it); else ``None``."""
    root = get_settings().reports_dir
    target = confined(root / path, root)
    return target if target is not None and target.is_file() else None


def report_link(path: str | None) -> str | None:
    """The ``/rapports/...`` address of a stored report path, if it names a file the view may serve."""
    if not path:
        return None
    root = get_settings().reports_dir
    stored = from_stored(path, root)
    target = confined(stored, root) if stored is not None else None
    return target.relative_to(root.resolve()).as_posix() if target is not None else None


def file_name(path: Any) -> str:
    """What a page shows of a path it cannot link: the file's name, never the server's folders."""
    return Path(str(path)).name if path else ""


def _read_card_file(p: Path, files: list[str]) -> dict[str, Any]:
    text = p.read_text(encoding="utf-8", errors="replace")[:200_000]
    doc: dict[str, Any] = {"path": p.name, "files": files}
    if p.suffix == ".json":
        try:
            return {**doc, "json": mask_tree(json.loads(text))}
        except ValueError:
            pass
    if p.suffix in (".md", ".txt"):
        doc["text"] = mask_personal_values(text)
    return doc


def card_documents(card_path: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The model card and, next to it, the AI label (files whose name contains ``label``), masked.

    A card that cannot be shown says why by its name only: missing from the models folder, or recorded outside
    it (then not even its name: the row points somewhere the view never reads).
    """
    if card_path is None:
        return None, None
    card = card_file(card_path)
    if card is None:
        settings = get_settings()
        stored = from_stored(card_path, settings.models_dir)
        inside = stored is not None and confined(stored, settings.models_dir, settings) is not None
        return {"name": file_name(card_path) if inside else None, "missing": True, "files": []}, None
    folder = card.parent
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    label_files = [n for n in names if "label" in n]
    card_files = [n for n in names if n not in label_files and n.rsplit(".", 1)[0] == card.stem] or [card.name]
    label_main = next((n for n in label_files if n.endswith(".json")), label_files[0] if label_files else None)
    label = _read_card_file(folder / label_main, label_files) if label_main else None
    return _read_card_file(card, card_files), label
