"""Streaming a large Arrow table: record batches flow through the stages one at a time, so
memory stays bounded however large the table, and every stage works at once.

Run: python examples/stream_arrow.py [ROWS]
The same table through the command line:
    mpipe run examples/arrow_stats.yaml --input-file table.arrow --stream --batch-size 100000
"""

import asyncio
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mpipe import GraphExecutor, create_simple_pipeline

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
rng = np.random.default_rng(0)
table = pa.table(
    {
        "sensor": pa.array(rng.integers(0, 8, rows), pa.int32()),
        "value": pa.array(rng.normal(20.0, 5.0, rows)),
    }
)


def keep_valid(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch.filter(pc.greater(batch["value"], 0.0))


def batch_stats(batch: pa.RecordBatch) -> dict[str, float]:
    return {"rows": batch.num_rows, "sum": pc.sum(batch["value"]).as_py() or 0.0}


graph = create_simple_pipeline([("valid", keep_valid), ("stats", batch_stats)], "arrow_stream")
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "table.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=100_000)
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        out = asyncio.run(GraphExecutor(graph).execute_stream({"valid": batches}))

stats = out["stats:output"]
kept = sum(s["rows"] for s in stats)
mean = sum(s["sum"] for s in stats) / kept
print(f"{rows:,} rows in {len(stats)} batches; kept {kept:,} valid rows; mean value {mean:.3f}")
expected = table.filter(pc.greater(table["value"], 0.0))
assert kept == expected.num_rows
assert abs(mean - pc.mean(expected["value"]).as_py()) < 1e-9
