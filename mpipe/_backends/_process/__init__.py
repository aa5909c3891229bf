"""The process backend: a pool of worker processes fed through shared-memory rings.

``_backend`` is the pool (the parent's side), ``_worker`` the loop each worker runs,
``_protocol`` the message kinds and frames both sides speak, ``_launch`` how a worker starts.
Nothing is imported here: a worker imports ``_worker`` and ``_protocol`` only, never the pool.
"""
