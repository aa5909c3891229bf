"""Functions that observed_pipeline.yaml names as "_observe_rules:..." (found next to the config)."""

import sys
from typing import Any


def parse_number(text: Any) -> float:
    """A number from its text; anything else fails the firing."""
    return float(text)


def square(x: float) -> float:
    """The number squared."""
    return x * x


def error_rate_above_10pct(summary: dict[str, Any]) -> bool:
    """An alert condition over the monitor's metrics summary."""
    return bool(summary["error_rate"] > 0.1)


def print_alert(alert: dict[str, Any]) -> None:
    """An alert action: one line on stderr."""
    print(f"ALERT {alert['rule']}: fired {alert['data']['times_fired']} time(s)", file=sys.stderr)
