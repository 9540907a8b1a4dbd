"""The predictions made for a person go with the person's rows.

An accepted inference batch has its predictions beside it
(:func:`charter_guardrails.decision.scoring.predictions_path`): per data row of the batch its number (``row``, 1 for
the first), the prediction and its probability. They hold no input value, but a prediction about the person is
about the person, and once the batch loses rows the numbers no longer line up. So when rows leave a batch, the same
rows leave its predictions, and the others are numbered again as they now stand in the batch.
"""

from __future__ import annotations

import os
from pathlib import Path

from charter_guardrails.core.errors import ConfigError


def erase_predictions(batch: Path, dropped: set[int]) -> int:
    """Remove from the predictions beside ``batch`` the rows ``dropped`` (0-based data rows, as the batch's reader
    counts them) and renumber the rest; the number of predictions removed (0 without a predictions file)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from charter_guardrails.decision.scoring import predictions_path

    target = predictions_path(batch)
    if not dropped or not target.exists():
        return 0
    table = pq.read_table(target)
    if "row" not in table.column_names:
        raise ConfigError(f"{target.name} has no row column: delete it, the batch's predictions can be made again")
    rows = table.column("row").to_numpy()
    kept = pc.invert(pc.is_in(pa.array(rows - 1), value_set=pa.array(sorted(dropped), pa.int64())))
    remaining = table.filter(kept)
    renumbered = remaining.set_column(
        remaining.column_names.index("row"), "row", pa.array(range(1, remaining.num_rows + 1), pa.int64())
    )
    tmp = target.with_name(f".{target.name}.dsr-{os.getpid()}.tmp")
    pq.write_table(renumbered, tmp)
    os.replace(tmp, target)
    return int(table.num_rows - remaining.num_rows)
