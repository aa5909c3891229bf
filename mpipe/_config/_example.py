"""An example config: a starting point to copy and edit, and a check that the format reads."""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["create_example_config"]


def create_example_config() -> dict[str, Any]:
    """A small, valid config as a plain dict (write it out as YAML or JSON to start a file).

    Three processors in a chain, each with an ``input`` and an ``output`` pipe: ``text_input``
    (``simple``, the registered ``passthrough`` function) -> ``text_transformer``
    (``uppercase``) -> ``text_filter`` (``data_filter``, ``strings_only``); a composite error
    strategy (retry twice, from 0.5 s, then skip up to 5 firings); monitoring on; checkpoints
    in ``./checkpoints`` (relative to the current directory when an executor is built from it).

    Returns:
        A new dict each call; ``ConfigLoader().load_from_dict`` accepts it.
    """
    chain = [
        ("text_input", "simple", {"function": "passthrough"}),
        ("text_transformer", "text_transformer", {"transformation": "uppercase"}),
        ("text_filter", "data_filter", {"condition": "strings_only"}),
    ]
    return {
        "graph_id": "example_processing_graph",
        "processors": [
            {
                "processor_id": pid,
                "processor_type": kind,
                "parameters": parameters,
                "input_pipes": ["input"],
                "output_pipes": ["output"],
            }
            for pid, kind, parameters in chain
        ],
        "connections": [
            {
                "from_processor": a[0],
                "from_output": "output",
                "to_processor": b[0],
                "to_input": "input",
            }
            for a, b in itertools.pairwise(chain)
        ],
        "error_strategy": {
            "type": "composite",
            "strategy_order": "sequential",
            "strategies": [
                {"type": "retry", "max_retries": 2, "initial_delay": 0.5},
                {"type": "skip", "max_skips": 5},
            ],
        },
        "monitoring": {"enabled": True, "log_level": "info", "max_events": 1000},
        "checkpoints": {"enabled": True, "storage_path": "./checkpoints", "max_checkpoints": 100},
    }
