"""Data quality guardrails (Équité 2, Maîtrise humaine 1, AI Act Art. 10(3)-(4)).

- :mod:`.suites`: Great Expectations suites kept as JSON files in ``expectations/``;
- :mod:`.runner`: validates a DataFrame, a file or a SQL table (pushed down) and redacts the results;
- :mod:`.drift`: inference batch against the stored training profile;
- :mod:`.representativeness`: group shares, group sizes and base rates of the training data.

Heavy libraries (pandas, Great Expectations, scipy) are imported inside functions.
"""

from __future__ import annotations

QUALITY_ENGAGEMENTS = ["equite.2", "maitrise_humaine.1"]
DRIFT_ENGAGEMENTS = ["maitrise_humaine.1", "equite.2"]
REPRESENTATIVENESS_ENGAGEMENTS = ["equite.1", "equite.2"]
