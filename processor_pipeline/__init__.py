"""Compatibility package: ``processor_pipeline.v2`` re-exports mpipe's public API."""
