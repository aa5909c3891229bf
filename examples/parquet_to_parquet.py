"""A Parquet-to-Parquet job: the record batches of one Parquet file stream through worker
processes (a filter and a derived column, with pyarrow.compute) and are written to another
Parquet file as they arrive. Memory stays bounded by the pipes, whatever the file's size: the
reader is a generator, and backpressure holds it back while the workers are busy.

Run: python examples/parquet_to_parquet.py IN.parquet OUT.parquet
or:  python examples/parquet_to_parquet.py [ROWS]
to convert a sample input of ROWS rows (200,000 unless given) made in a temporary folder.
"""

import asyncio
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpipe import GraphExecutor, ProcessingGraph, SimpleProcessor


def read_batches(path):  # the source: one item per record batch of the file
    yield from pq.ParquetFile(path).iter_batches(batch_size=50_000)


def clean(batch):  # runs in a worker process; the batch crosses through shared memory
    batch = batch.filter(pc.greater(batch["price"], 0.0))
    total = pc.multiply(batch["price"], pc.cast(batch["quantity"], pa.float64()))
    return batch.append_column("total", total)


def make_sample(path, rows=200_000):
    rng = np.random.default_rng(7)
    table = pa.table(
        {
            "order": pa.array(np.arange(rows)),
            "price": pa.array(rng.normal(10.0, 4.0, rows)),
            "quantity": pa.array(rng.integers(1, 20, rows), pa.int32()),
        }
    )
    pq.write_table(table, path, row_group_size=50_000)


async def convert(source, target):
    graph = ProcessingGraph("parquet_job")
    for pid, fn, config in [("read", read_batches, {}), ("clean", clean, {"cpu_bound": True})]:
        p = SimpleProcessor(fn, pid, **config)
        p.create_default_pipes()
        graph.add_processor(p)
    graph.connect("read", "output", "clean", "input")
    writer = None
    rows = 0
    try:
        async for _key, batch in GraphExecutor(graph).stream({"read": [str(source)]}):
            if writer is None:
                writer = pq.ParquetWriter(str(target), batch.schema)
            writer.write_batch(batch)
            rows += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


if len(sys.argv) == 3:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    rows = asyncio.run(convert(source, target))
    print(f"{source} -> {target}: {rows:,} rows written")
else:
    sample_rows = int(sys.argv[1]) if len(sys.argv) == 2 else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "orders.parquet", Path(tmp) / "orders_clean.parquet"
        make_sample(source, sample_rows)
        rows = asyncio.run(convert(source, target))
        written = pq.read_table(target)
        expected = pq.read_table(source).filter(pc.greater(pc.field("price"), 0.0))
        assert written.num_rows == rows == expected.num_rows
        assert written.column_names == ["order", "price", "quantity", "total"]
        assert written["order"].to_pylist() == expected["order"].to_pylist()  # in order
        print(
            f"{source.name} -> {target.name}: {rows:,} of {pq.read_metadata(source).num_rows:,} rows kept"
        )
        print(f"total of the orders: {pc.sum(written['total']).as_py():,.2f}")
