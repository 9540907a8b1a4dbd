"""quality: Great Expectations suites, drift against the training profile, representativeness of the training data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def run(ctx: Any) -> None:
    from charter_guardrails.checks.quality._gx import quiet_gx
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.settings import get_settings

    quiet_gx()
    data = get_settings().data_dir / "citizen_requests"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    policy = ["--policy", "citizen_requests"]
    count = iter(range(1, 100))

    def case(title: str, argv: list[str], expected: int, why: str) -> None:
        # one ledger run per case: a result is keyed by (run, check, dataset), so cases must not share a run
        print(f"\n    -- {title}", flush=True)
        code = charter([*argv, "--run-id", f"make_run__quality_{stamp}_{next(count)}"])
        ctx.expect(code == expected, f"{why} (exit {code}, expected {expected})")

    case(
        "clean training data against citizen_requests.training.json (stores the drift reference profile)",
        ["validate", str(data / "training.csv"), *policy, "--write-profile"],
        0,
        "clean training data passes its quality suite",
    )
    case(
        "the quality-failure variant",
        ["validate", str(data / "training__quality_failure.csv"), *policy, "--dataset", "training"],
        1,
        "nulls, unknown arrondissements and channels and duplicate ids fail the suite",
    )
    profile = get_settings().home / "profiles" / "citizen_requests" / "training.json"
    case(
        "clean inference batch against the stored training profile",
        ["drift", str(data / "inference_batch.csv"), "--reference", str(profile), *policy],
        0,
        "a clean batch does not drift",
    )
    case(
        "drifted inference batch against the stored training profile",
        [
            "drift",
            str(data / "inference_batch__drifted.csv"),
            "--reference",
            str(profile),
            *policy,
            "--dataset",
            "inference",
        ],
        1,
        "the drifted batch (channel, arrondissements, vocabulary) drifts",
    )
    case(
        "representativeness of the clean training data",
        ["representativeness", str(data / "training.csv"), *policy],
        0,
        "clean training data represents the arrondissements and age bands",
    )
    case(
        "representativeness of the biased sample",
        ["representativeness", str(data / "training__biased.csv"), *policy, "--dataset", "training"],
        1,
        "the biased sample fails: 16e missing (data gap), 6e-8e over-represented, older ages, skewed label",
    )
