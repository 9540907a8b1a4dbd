"""The commands of docs/onboarding.md, as the tests run them: the page and what is tested cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "onboarding.md"


def doc_commands(step: str) -> list[str]:
    """The ``$ `` lines of the ``console`` block that follows ``<!-- onboarding-step: STEP -->`` in the page."""
    match = re.search(rf"<!-- onboarding-step: {step} -->\n```console\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, f"docs/onboarding.md has no console block for the step {step!r}"
    return [line[2:] for line in match.group(1).splitlines() if line.startswith("$ ")]
