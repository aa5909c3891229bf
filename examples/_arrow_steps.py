"""Functions that arrow_stats.yaml names as "_arrow_steps:..." (found next to the config)."""

from typing import Any


def row_count(batch: Any) -> list[int]:
    """The batch's row count, as a one-element list for the summing aggregator."""
    return [batch.num_rows]
