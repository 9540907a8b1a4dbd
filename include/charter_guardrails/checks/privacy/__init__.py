"""Personal data guardrail (Sûreté 1, Proportionnalité 3).

- :mod:`.analyzer`: the Presidio analyzer for French, built once per process, offline;
- :mod:`.recognizers`: French recognizers, checksums from python-stdnum;
- :mod:`.scanner`: the column scanner (sampling with a stated guarantee, or exhaustive);
- :mod:`.verdict`: findings against the policy → ``CheckResult``, incident, reports, ledger rows;
- :mod:`.pseudonymise`: keyed pseudonymisation producing the training-ready dataset.

Nothing here imports pandas, Presidio or spaCy at package import time.
"""

from __future__ import annotations
