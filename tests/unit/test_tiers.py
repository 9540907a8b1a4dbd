"""Test tiers are markers given by the folder a test sits in, and a test cannot claim another tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, TIERS, tier_errors


def test_every_tier_folder_exists_and_every_test_folder_is_a_tier() -> None:
    folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name not in {"data", "__pycache__"}}
    assert folders == set(TIERS)


def test_this_test_carries_its_folders_marker(request: pytest.FixtureRequest) -> None:
    markers = {m.name for m in request.node.iter_markers()}
    assert "unit" in markers
    assert not (markers & set(TIERS)) - {"unit"}


def test_a_test_marked_with_another_tier_or_outside_a_tier_is_a_collection_error(pytester: pytest.Pytester) -> None:
    tests_dir = pytester.path / "tests"
    (tests_dir / "unit").mkdir(parents=True)
    (tests_dir / "unit" / "test_a.py").write_text(
        "import pytest\n\n@pytest.mark.e2e\ndef test_claims_e2e():\n    pass\n\ndef test_plain():\n    pass\n"
    )
    (tests_dir / "test_loose.py").write_text("def test_loose():\n    pass\n")
    items, _ = pytester.inline_genitems(tests_dir)
    errors = tier_errors(items, tests_dir)
    assert len(errors) == 2
    assert any("test_claims_e2e" in e and "marked e2e" in e for e in errors)
    assert any("test_loose" in e and "not in tests/" in e for e in errors)
    plain = next(i for i in items if i.name == "test_plain")
    assert plain.get_closest_marker("unit") is not None
    assert Path(plain.path).parent.name == "unit"
