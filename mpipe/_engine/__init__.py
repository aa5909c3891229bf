"""The engine: how a graph runs.

``_executor`` is the user's handle (options, backends, lifetime); ``_plan`` compiles a graph into
a :class:`Plan`; ``_run`` turns a plan and an input into a :class:`Run` that owns every piece of
that run's state; ``_scheduler`` (with ``_batches``) moves items through the run's lanes and
hands firings to backends. ``docs/architecture.md`` walks the whole path.
"""
