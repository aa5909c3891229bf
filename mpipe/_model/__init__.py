"""The model: what a user builds and hands to an executor.

Graphs, processors, pipes, error strategies and the interfaces they implement. Pure Python: no
I/O, no processes, and no state of any run (a run keeps its own, see ``mpipe._engine``).
Validation and topological order live here.
"""
