"""Personal data guardrail (Sûreté 1), and the pseudonymised, minimised training copy.

- :mod:`.analyzer`: the Presidio analyzer for French, built once per process, offline;
- :mod:`.recognizers`: French recognizers, checksums from python-stdnum;
- :mod:`.scanner`: the column scanner (sampling with a stated guarantee, or exhaustive);
- :mod:`.report`: what a scan reports (options, per-column findings, hits);
- :mod:`.detector`: the recognizers compiled for bulk use, planned by :mod:`.prefilter`;
- :mod:`.ner_pool`: spaCy NER in bounded batches, in forked workers for large inputs;
- :mod:`.verdict`: findings against the policy → ``CheckResult``, incident, ledger rows;
- :mod:`.report_files`: the JSON and HTML reports of a check, linked from its result;
- :mod:`.pseudonymise`: keyed pseudonymisation producing the training-ready dataset.

Nothing here imports pandas, Presidio or spaCy at package import time.
"""

from __future__ import annotations
