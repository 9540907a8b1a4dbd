"""``make eval-pii``: the scanner on a labelled French table; prints column and cell metrics, exits 1 if a target
is missed.

Sizes: ``EVAL_ROWS`` (default 10,000). The table and the metrics are in
``charter_demo.pii_evaluation``.
"""

from __future__ import annotations

import json
import logging
import os
import sys


def main() -> int:
    from charter_demo.pii_evaluation import evaluate, format_evaluation

    logging.basicConfig(level=logging.WARNING)
    result = evaluate(rows=int(os.environ.get("EVAL_ROWS", "10000")))
    print(format_evaluation(result))
    if os.environ.get("EVAL_JSON"):
        with open(os.environ["EVAL_JSON"], "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, ensure_ascii=False)
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
