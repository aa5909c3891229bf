"""The config loader: files to :class:`GraphConfig`, and :class:`GraphConfig` to a graph.

Two steps, each reporting every problem it finds at once:

1. *load* (``load_from_file`` / ``load_from_dict``): parse, check against the JSON Schema, then
   check what a schema cannot say (unique ids, connections that name real processors and pipes,
   an input pipe fed once);
2. *build* (``create_graph_from_config``): resolve processor types and references, instantiate,
   wire, and validate the graph (cycles).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from .._engine._executor import GraphExecutor
from .._errors import ConfigurationError
from .._model._graph import ProcessingGraph
from .._model._interfaces import ProcessorInterface
from .._model._pipe import DEFAULT_MAX_BYTES, Pipe, PipeType
from .._model._placement import check_placement
from .._model._processors import BaseProcessor
from .._observe._checkpoints import CheckpointManager
from .._observe._monitor import Monitor
from . import _builtins as _builtins  # registers the built-in types
from ._files import read_config_file
from ._model import (
    ConnectionConfig,
    GraphConfig,
    Problem,
    ProcessorConfig,
    config_error,
    field_path,
    short_repr,
    sort_problems,
)
from ._observe import alert_problems, build_checkpoint_manager, build_monitor, wanted
from ._refs import is_reference, resolve_reference
from ._registry import ProcessorFactory, ProcessorRegistry, global_registry
from ._schema import schema_problems, section_problems
from ._strategies import build_strategy

__all__ = ["ConfigLoader", "load_graph_from_file"]

ProcessorFactoryFn = Callable[[ProcessorConfig], ProcessorInterface]


def _structure_problems(data: Mapping[str, Any]) -> list[Problem]:
    """What the schema cannot check: unique ids and connections that fit the processors."""
    problems: list[Problem] = []
    procs = data.get("processors")
    # processor id -> (its index, its input pipe names, its output pipe names)
    index: dict[str, int] = {}
    declared: dict[str, dict[int, set[str]]] = {}
    for i, p in enumerate(procs if isinstance(procs, list) else []):
        if not isinstance(p, dict) or not isinstance(p.get("processor_id"), str):
            continue
        pid = p["processor_id"]
        if pid in declared:
            problems.append(
                Problem(
                    field_path(["processors", i, "processor_id"]),
                    f"duplicate processor id {pid!r} (also processors[{index[pid]}])",
                )
            )
            continue
        ins = p.get("input_pipes", ["input"])
        outs = p.get("output_pipes", ["output"])
        index[pid] = i
        declared[pid] = {
            1: {x for x in ins if isinstance(x, str)} if isinstance(ins, list) else set(),
            2: {x for x in outs if isinstance(x, str)} if isinstance(outs, list) else set(),
        }
    conns = data.get("connections")
    fed: dict[tuple[str, str], int] = {}
    for k, c in enumerate(conns if isinstance(conns, list) else []):
        if not isinstance(c, dict):
            continue
        for end, pipe_key, side in (
            ("from_processor", "from_output", 2),
            ("to_processor", "to_input", 1),
        ):
            pid, pipe = c.get(end), c.get(pipe_key)
            if not isinstance(pid, str):
                continue
            if pid not in declared:
                known = ", ".join(declared) or "none"
                problems.append(
                    Problem(
                        field_path(["connections", k, end]),
                        f"no processor {pid!r} in this config (processors: {known})",
                    )
                )
                continue
            names = declared[pid][side]
            if isinstance(pipe, str) and pipe not in names:
                kind = "output" if side == 2 else "input"
                problems.append(
                    Problem(
                        field_path(["connections", k, pipe_key]),
                        f"processor {pid!r} has no {kind} pipe {pipe!r} "
                        f"(its {kind}_pipes: {', '.join(sorted(names)) or 'none'})",
                    )
                )
        to_pid, to_pipe = c.get("to_processor"), c.get("to_input")
        if isinstance(to_pid, str) and isinstance(to_pipe, str):
            to = (to_pid, to_pipe)
            if to in fed:
                problems.append(
                    Problem(
                        field_path(["connections", k, "to_input"]),
                        f"input pipe {to_pid}:{to_pipe} is already fed by connections[{fed[to]}]; "
                        "an input pipe takes exactly one connection",
                    )
                )
            else:
                fed[to] = k
    return problems


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


class ConfigLoader:
    """Reads graph configs (YAML or JSON) and builds graphs and executors from them.

    Args:
        registry: Where ``processor_type`` names are looked up (default: the global registry).
    """

    def __init__(self, registry: ProcessorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else global_registry
        self.factory = ProcessorFactory(self.registry)
        self._factories: dict[str, ProcessorFactoryFn] = {}

    def register_processor_factory(self, processor_type: str, factory: ProcessorFactoryFn) -> None:
        """Build processors of ``processor_type`` with ``factory(config)`` (this loader only).

        A factory takes precedence over a registered class of the same name. Whatever pipes the
        factory declares, the processor gets those its config names.

        Raises:
            ConfigurationError: An empty type name or a factory that is not callable.
        """
        if not isinstance(processor_type, str) or not processor_type:
            raise ConfigurationError(
                f"processor type must be a non-empty string, got {processor_type!r}",
                "processor_type",
            )
        if not callable(factory):
            raise ConfigurationError(
                f"factory for {processor_type!r} must be callable, got {factory!r}", "factory"
            )
        self._factories[processor_type] = factory

    # -- loading -----------------------------------------------------------------------------

    def load_from_file(self, path: str | os.PathLike[str]) -> GraphConfig:
        """Read a config file: ``.yaml`` / ``.yml`` (safe loader) or ``.json``.

        Raises:
            ConfigurationError: The file cannot be read, is malformed, uses YAML Python tags,
                or describes an invalid config (every problem named by its field path).
        """
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in (".yaml", ".yml", ".json"):
            raise ConfigurationError(
                f"config {str(p)!r}: unsupported file type {suffix or '(none)'!r}; "
                "expected .yaml, .yml or .json",
                "path",
            )
        raw, data = read_config_file(p)
        try:
            return self.load_from_dict(data, source=str(p))
        except MemoryError as exc:
            raise ConfigurationError(
                f"config {str(p)!r}: ran out of memory while checking it ({len(raw):,} bytes)",
                "path",
            ) from exc

    def load_from_dict(self, data: Any, source: str | None = None) -> GraphConfig:
        """Check a config mapping and turn it into a :class:`GraphConfig`.

        Args:
            data: The parsed config.
            source: Where it came from, for messages.

        Raises:
            ConfigurationError: Every problem at once, each naming its field path.
        """
        if isinstance(data, GraphConfig):
            data = data.to_dict()
        if not isinstance(data, dict):
            where = f"config {source!r}" if source else "config"
            raise ConfigurationError(
                f"{where} must be a mapping with 'processors', got {type(data).__name__} "
                f"{short_repr(data)}",
                "config",
            )
        problems = sort_problems(
            [
                *schema_problems(data),
                *_structure_problems(data),
                *self._type_problems(data),
                *alert_problems(data.get("monitoring")),
            ]
        )
        if problems:
            raise config_error(problems, source)
        processors = [
            ProcessorConfig(
                processor_id=p["processor_id"],
                processor_type=p["processor_type"],
                parameters=dict(p.get("parameters", {})),
                input_pipes=list(p.get("input_pipes", ["input"])),
                output_pipes=list(p.get("output_pipes", ["output"])),
                execution=p.get("execution"),
                timeout=None if p.get("timeout") is None else float(p["timeout"]),
                max_concurrent=None
                if p.get("max_concurrent") is None
                else int(p["max_concurrent"]),
                error_strategy=p.get("error_strategy"),
            )
            for p in data["processors"]
        ]
        connections = [
            ConnectionConfig(
                c["from_processor"],
                c["from_output"],
                c["to_processor"],
                c["to_input"],
                int(c.get("max_size", 1000)),
                c.get("max_bytes", DEFAULT_MAX_BYTES),
            )
            for c in data.get("connections", [])
        ]
        executor = dict(data.get("executor", {}))
        if "max_workers" in executor:
            executor["max_workers"] = int(executor["max_workers"])
        return GraphConfig(
            graph_id=data.get("graph_id"),
            processors=processors,
            connections=connections,
            error_strategy=data.get("error_strategy"),
            executor=executor,
            monitoring=dict(data.get("monitoring", {})),
            checkpoints=dict(data.get("checkpoints", {})),
            source=source,
        )

    def _known_types(self) -> list[str]:
        return sorted({*self.registry.list_registered_processors(), *self._factories})

    def _type_problems(self, data: Mapping[str, Any]) -> list[Problem]:
        """Processor types that are neither registered nor ``module:Class`` references."""
        procs = data.get("processors")
        out = []
        for i, p in enumerate(procs if isinstance(procs, list) else []):
            kind = p.get("processor_type") if isinstance(p, dict) else None
            if not isinstance(kind, str) or not kind:
                continue
            if kind in self._factories or self.registry.is_registered(kind) or is_reference(kind):
                continue
            out.append(
                Problem(field_path(["processors", i, "processor_type"]), self._unknown(kind))
            )
        return out

    def _unknown(self, kind: str) -> str:
        return (
            f"unknown processor type {kind!r}; expected one of {', '.join(self._known_types())} "
            "or a 'module:Class' reference"
        )

    # -- building -----------------------------------------------------------------------------

    def _checked(self, config: GraphConfig | Mapping[str, Any]) -> GraphConfig:
        """A checked config (a GraphConfig built by hand is checked like a file)."""
        if isinstance(config, GraphConfig):
            return self.load_from_dict(config.to_dict(), source=config.source)
        return self.load_from_dict(config)

    def _instantiate(self, cfg: ProcessorConfig, i: int) -> ProcessorInterface:
        """One processor from its config; raises ConfigurationError naming the field."""
        at: list[str | int] = ["processors", i]
        kind = cfg.processor_type
        params = cfg.parameters
        factory = self._factories.get(kind)
        if factory is not None:
            try:
                proc: Any = factory(cfg)
            except ConfigurationError as exc:
                raise ConfigurationError(exc.message, field_path([*at, "parameters"])) from None
            except Exception as exc:
                raise ConfigurationError(
                    f"factory for {kind!r} failed: {type(exc).__name__}: {exc}", field_path(at)
                ) from exc
        else:
            type_field = field_path([*at, "processor_type"])
            if self.registry.is_registered(kind):
                cls: Any = self.registry.get_processor_class(kind)
            elif is_reference(kind):
                cls = resolve_reference(kind, type_field)
                if not (isinstance(cls, type) and issubclass(cls, ProcessorInterface)):
                    raise ConfigurationError(
                        f"{kind!r} is not a processor class (a ProcessorInterface subclass)",
                        type_field,
                    )
            else:
                raise ConfigurationError(self._unknown(kind), type_field)
            fn = params.get("function")
            if (
                isinstance(cls, type)
                and issubclass(cls, _builtins.FunctionProcessor)
                and isinstance(fn, str)
                and fn in self.registry.list_registered_functions()
            ):
                # A function registered in this loader's own registry.
                params = {**params, "function": self.registry.get_function(fn)}
            try:
                inspect.signature(cls).bind(processor_id=cfg.processor_id, **params)
            except TypeError as exc:
                raise ConfigurationError(
                    f"{kind} ({cls.__name__}) does not accept these parameters: {exc}",
                    field_path([*at, "parameters"]),
                ) from None
            except ValueError:  # no signature to inspect: let the call decide
                pass
            try:
                proc = cls(processor_id=cfg.processor_id, **params)
            except ConfigurationError as exc:
                sub = exc.field if exc.field in params else None
                raise ConfigurationError(
                    exc.message, field_path([*at, "parameters", *([sub] if sub else [])])
                ) from None
            except Exception as exc:
                raise ConfigurationError(
                    f"creating {kind} ({cls.__name__}) failed: {type(exc).__name__}: {exc}",
                    field_path(at),
                ) from exc
        if not isinstance(proc, ProcessorInterface):
            raise ConfigurationError(
                f"processor type {kind!r} produced {type(proc).__name__}, not a processor",
                field_path([*at, "processor_type"]),
            )
        try:
            self._configure(proc, cfg, at)
        except ConfigurationError:
            raise
        except Exception as exc:  # a foreign processor that refuses its pipes or settings
            raise ConfigurationError(
                f"configuring {kind} failed: {type(exc).__name__}: {exc}", field_path(at)
            ) from exc
        return proc

    @staticmethod
    def _configure(proc: Any, cfg: ProcessorConfig, at: list[str | int]) -> None:
        """Give ``proc`` its config's id, pipes, placement, timeout and concurrency."""
        pid = cfg.processor_id
        proc.processor_id = pid
        proc.input_pipes = {}
        proc.output_pipes = {}
        for name in cfg.input_pipes:
            proc.register_input_pipe(name, Pipe(f"{pid}:{name}", pipe_type=PipeType.INPUT))
        for name in cfg.output_pipes:
            proc.register_output_pipe(name, Pipe(f"{pid}:{name}", pipe_type=PipeType.OUTPUT))
        if cfg.execution is not None:
            proc.execution = check_placement(cfg.execution, f"processor {pid!r}")
        own = isinstance(proc, BaseProcessor)
        for name in ("execution", "timeout", "max_concurrent"):
            value = getattr(cfg, name)
            if value is None:
                continue
            if not own and name != "execution":
                raise ConfigurationError(
                    f"{name} needs a BaseProcessor; {type(proc).__name__} is not one",
                    field_path([*at, name]),
                )
            if own:
                proc.config[name] = value
                setattr(proc, name, value)

    def create_graph_from_config(self, config: GraphConfig | Mapping[str, Any]) -> ProcessingGraph:
        """Build the graph a config describes.

        Args:
            config: A :class:`GraphConfig`, or a mapping (loaded with :meth:`load_from_dict`).

        Raises:
            ConfigurationError: Every processor that cannot be built, every strategy that
                cannot be made and every graph problem (cycles), each naming its field path.
        """
        cfg = self._checked(config)
        problems: list[Problem] = []

        def attempt(fn: Callable[[], Any]) -> Any:
            try:
                return fn()
            except ConfigurationError as exc:
                problems.append(Problem(exc.field or "config", exc.message))
                return None

        graph_strategy = None
        if cfg.error_strategy is not None:
            graph_strategy = attempt(
                partial(build_strategy, cfg.error_strategy, ["error_strategy"])
            )
        graph = ProcessingGraph(cfg.graph_id, error_strategy=graph_strategy)
        for i, pcfg in enumerate(cfg.processors):
            proc = attempt(partial(self._instantiate, pcfg, i))
            if proc is None or pcfg.processor_id in graph.nodes:
                continue
            graph.add_processor(proc)
            if pcfg.error_strategy is not None:
                where: list[str | int] = ["processors", i, "error_strategy"]
                strategy = attempt(partial(build_strategy, pcfg.error_strategy, where))
                if strategy is not None:
                    graph.set_error_strategy(pcfg.processor_id, strategy)
        if problems:
            raise config_error(problems, cfg.source)
        for c in cfg.connections:
            graph.connect(
                c.from_processor,
                c.from_output,
                c.to_processor,
                c.to_input,
                c.max_size,
                c.max_bytes,
            )
        problems = [Problem("connections", msg) for msg in graph.validate()]
        if problems:
            raise config_error(problems, cfg.source)
        return graph

    def create_executor_from_config(
        self,
        config: GraphConfig | Mapping[str, Any],
        graph: ProcessingGraph | None = None,
        **overrides: Any,
    ) -> GraphExecutor:
        """An executor for the config's graph, set up by its ``executor`` section.

        Args:
            config: The config.
            graph: The graph to run (default: built from ``config``).
            **overrides: Executor options that win over the section (``backend``,
                ``max_workers``); a None value leaves the section's.

        Raises:
            ConfigurationError: As for :meth:`create_graph_from_config`, or a bad executor option.

        The executor gets a monitor and a checkpoint manager when the config's ``monitoring``
        and ``checkpoints`` sections ask for them (present, not empty, ``enabled`` not false),
        unless ``monitor`` / ``checkpoint_manager`` overrides are given.
        """
        cfg = self._checked(config)
        if graph is None:
            graph = self.create_graph_from_config(cfg)
        options: dict[str, Any] = dict(cfg.executor)
        if overrides.get("monitor") is None and wanted(cfg.monitoring):
            options["monitor"] = build_monitor(cfg.monitoring, cfg.source)
        if overrides.get("checkpoint_manager") is None and wanted(cfg.checkpoints):
            options["checkpoint_manager"] = build_checkpoint_manager(cfg.checkpoints, cfg.source)
        options.update({k: v for k, v in overrides.items() if v is not None})
        return GraphExecutor(graph, **options)

    # -- monitoring and checkpoints ------------------------------------------------------------

    def _section(self, config: Any, name: str) -> tuple[dict[str, Any], str | None]:
        """A checked section from a whole config or from the section itself."""
        if config is None:
            return {}, None
        if isinstance(config, GraphConfig) or (
            isinstance(config, Mapping) and "processors" in config
        ):
            cfg = self._checked(config)
            section: dict[str, Any] = getattr(cfg, name)
            return section, cfg.source
        problems = sort_problems(
            [
                *section_problems(name, config),
                *(alert_problems(config) if name == "monitoring" else []),
            ]
        )
        if problems:
            raise config_error(problems, None)
        return dict(config), None

    def create_monitor_from_config(
        self, config: GraphConfig | Mapping[str, Any] | None = None
    ) -> Monitor | None:
        """A :class:`~mpipe.Monitor` as a ``monitoring`` section describes it.

        Args:
            config: The ``monitoring`` section (``enabled``, ``max_events``, ``log_level``,
                ``sample_interval``, ``alerts``), or a whole config (a :class:`GraphConfig`, or
                a mapping with ``processors``) whose section is used. None: the defaults.

        Returns:
            The monitor, or None when the section says ``enabled: false``. Alert rules are
            attached through an :class:`~mpipe.AlertManager`, the monitor's ``alert_manager``.

        Raises:
            ConfigurationError: Every problem of the section (or config) at once, each naming
                its field path (``monitoring.alerts[0].condition``).
        """
        section, source = self._section(config, "monitoring")
        return build_monitor(section, source)

    def create_checkpoint_manager_from_config(
        self, config: GraphConfig | Mapping[str, Any] | None = None
    ) -> CheckpointManager | None:
        """A :class:`~mpipe.CheckpointManager` as a ``checkpoints`` section describes it.

        Args:
            config: The ``checkpoints`` section (``enabled``, ``storage_path``,
                ``max_checkpoints``, ``allow_pickle``), or a whole config whose section is
                used. None: the defaults (checkpoints in memory).

        Returns:
            The manager, or None when the section says ``enabled: false``.

        Raises:
            ConfigurationError: A bad section (every problem, each naming its field path), or
                a ``storage_path`` that cannot be used as a checkpoint folder.
        """
        section, source = self._section(config, "checkpoints")
        return build_checkpoint_manager(section, source)


def load_graph_from_file(config_path: str | os.PathLike[str]) -> ProcessingGraph:
    """The graph a config file (``.yaml``, ``.yml`` or ``.json``) describes, ready to run.

    The file's ``monitoring``, ``checkpoints`` and ``executor`` sections are checked but not
    used: build an executor with :meth:`ConfigLoader.create_executor_from_config` for those.

    Raises:
        ConfigurationError: The file cannot be read or parsed, or describes an invalid graph
            (every problem named by its field path).
    """
    loader = ConfigLoader()
    return loader.create_graph_from_config(loader.load_from_file(config_path))
