"""Data quality guardrails (Équité 2, Maîtrise humaine 1, Proportionnalité 3, AI Act Art. 10(3)-(4)).

- :mod:`.suites`: Great Expectations suites kept as JSON files in ``expectations/``;
- :mod:`.runner`: validates a DataFrame, a file or a SQL table (pushed down) and redacts the results;
- :mod:`.reference_profile`: the training profile, aggregates only, stored once per training dataset;
- :mod:`.drift`: inference batch against the stored training profile;
- :mod:`.representativeness`: group shares, group sizes and base rates of the training data.

Heavy libraries (pandas, Great Expectations, scipy) are imported inside functions.

The engagements each check serves are in :mod:`charter_guardrails.core.catalogue`.
"""

from __future__ import annotations
