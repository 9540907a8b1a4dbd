"""`make run`: the main job on the embedded default (SQLite, local files).

1. initialise Airflow's metadata database (SQLite under AIRFLOW_HOME);
2. migrate the ledger, create local keys, generate the sample data;
3. run every scenario in ``scripts/scenarios/`` (in name order), each driving real DAG runs;
4. print the verdict table from the ledger, verify the audit chain;
5. write the committee's charter report (HTML, JSON, signed PDF) and verify the PDF's signature.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("CHARTER_HOME", str(ROOT / ".charter"))
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(ROOT / "scripts"))

from charter_demo.local_airflow import checkout_config_env  # noqa: E402

# The checkout's policies, suites and references (the package ships none), unless the caller set other folders.
os.environ.update(checkout_config_env(ROOT))

from scenarios import Context, step  # noqa: E402


def main() -> int:
    started = time.monotonic()
    bin_dir = Path(sys.executable).parent
    step("Initialising Airflow metadata (SQLite) in " + os.environ["AIRFLOW_HOME"])
    proc = subprocess.run([str(bin_dir / "airflow"), "db", "migrate"], capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-4000:], file=sys.stderr)
        print("airflow db migrate failed; see the output above", file=sys.stderr)
        return 2

    from charter_guardrails.cli.main import main as charter

    for argv in (["ledger", "migrate"], ["keys", "init"], ["data", "generate"]):
        step("charter " + " ".join(argv))
        code = charter(argv)
        if code != 0:
            return code

    ctx = Context(root=ROOT)
    for path in sorted((ROOT / "scripts" / "scenarios").glob("[0-9]*.py")):
        spec = importlib.util.spec_from_file_location(f"scenario_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot load the scenario {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        step(f"Scenario {path.stem}: {module.__doc__.strip().splitlines()[0] if module.__doc__ else ''}")
        module.run(ctx)

    step("Verdicts")
    print(ctx.verdict_table())
    step("Audit chain")
    code = charter(["audit", "verify"])
    step("Charter report for the Comité de la Gouvernance Numérique")
    from charter_guardrails.core.settings import get_settings

    out = get_settings().reports_dir / "charte" / "make-run"
    code = code or charter(["report", "charter", "--out", str(out)])
    pdfs = sorted(out.glob("*.pdf"))
    code = code or (charter(["report", "verify", str(pdfs[-1])]) if pdfs else 1)
    print(
        f"\nDone in {time.monotonic() - started:.0f} s. Ledger: {os.environ['CHARTER_HOME']}/ledger.db.\n"
        "Review these runs in the governance view: `make ui`, then open http://127.0.0.1:8080/charte/"
        " (the Airflow UI with every DAG: `make airflow`)."
    )
    if ctx.unexpected:
        print("UNEXPECTED OUTCOMES:\n  " + "\n  ".join(ctx.unexpected), file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
