"""Monitoring and alerts: metrics per processor, an alert rule, a Chrome trace, the event log.

Run: python examples/monitoring_alerts.py
"""

import asyncio
import json
import tempfile
from pathlib import Path

from mpipe import (
    AlertManager,
    ConfigLoader,
    EventType,
    GraphExecutor,
    Monitor,
    SkipStrategy,
    create_simple_pipeline,
)


def parse(text: str) -> int:
    return int(text)  # "n/a" fails: the skip strategy drops that item


graph = create_simple_pipeline([("parse", parse), ("square", lambda n: n * n)])
graph.set_error_strategy("parse", SkipStrategy())

# log_level: events at this level or above also go to the "mpipe" logger; "critical" keeps the
# failed firings (ERROR events) off stderr here, since the example reports them itself.
monitor = Monitor(log_level="critical")
alerts = AlertManager(monitor)
# An event rule: condition and action get each MonitorEvent as the monitor records it.
alerts.add_alert_rule(
    "parse failed",
    condition=lambda event: event.event_type == EventType.PROCESSOR_ERROR,
    action=lambda event: print(f"ALERT {event.processor_id} failed: {event.data['error']}"),
)
# A metrics rule: the condition reads the metrics summary, the action gets the alert.
alerts.add_metrics_rule(
    "error rate above 10%",
    lambda summary: summary["error_rate"] > 0.1,
    lambda alert: print(f"ALERT {alert['rule']!r} (fired {alert['data']['times_fired']}x)"),
    cooldown=60,  # then quiet for a minute
)

items = ["1", "2", "n/a", "4", "5", "6", "oops", "8"]
results = asyncio.run(GraphExecutor(graph, monitor).execute_stream({"parse": items}))
print("results:", results)

summary = monitor.get_metrics_summary()
print(f"firings {summary['total_firings']}, errors {summary['total_errors']}", end="")
print(f", error rate {summary['error_rate']:.0%}")
for pid, stats in summary["processors"].items():
    print(
        f"  {pid}: {stats['count']} firings, {stats['errors']} errors, {stats['skips']} skipped,"
        f" p50 {stats['p50_time'] * 1e6:.0f} us, state {stats['state']}"
    )
print("events by type:", summary["events_by_type"])
print("active alerts:", [a["rule"] for a in alerts.get_active_alerts()])

with tempfile.TemporaryDirectory() as tmp:
    trace = monitor.export_trace(Path(tmp) / "run.json")  # open in https://ui.perfetto.dev
    spans = [e for e in json.loads(trace.read_text())["traceEvents"] if e["ph"] == "X"]
    print(f"trace: {len(spans)} spans (one for the run, one per firing)")
    events = monitor.export_events(path=Path(tmp) / "events.jsonl")  # JSON lines
    first = json.loads(events.splitlines()[0])
    print(f"event log: {len(events.splitlines())} lines, the first is {first['event_type']!r}")

# The same monitor from a config's `monitoring` section (alert conditions and actions there
# are "module:attr" references; see docs/config.md).
from_config = ConfigLoader().create_monitor_from_config({"max_events": 500, "log_level": "error"})
print("from a config:", type(from_config).__name__, "keeping", from_config.max_events, "events")
