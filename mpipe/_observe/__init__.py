"""Seeing and keeping what a run does: the hook protocol every observer implements, the
monitor, checkpoints, breakpoints and debug sessions, error tracking and graph pictures.

The engine calls into this layer through :class:`RunHooks`; nothing here runs a graph.
"""
