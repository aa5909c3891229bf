"""Hostile configs: alias bombs, recursive aliases, huge files, repeated JSON keys, no memory.

Each is refused with a :class:`ConfigurationError` (exit code 2 on the command line) that says
what is wrong, before anything expands it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mpipe import ConfigLoader, ConfigurationError, ExecutionError, GraphExecutor
from mpipe import create_simple_pipeline as chain
from mpipe._cli import main
from mpipe._config import _files


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def alias_bomb(levels: int) -> str:
    """Nine times as many nodes per level, through aliases: 9**levels strings in a few
    hundred bytes."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    lines.append(f"processors: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(9))  # 9**9, about 387 million strings
    assert path.stat().st_size < 600
    code, out, err = cli("validate", str(path))
    assert code == 2 and out == ""
    assert "YAML refused: the document expands to more than 1,000,000 nodes" in err
    assert len(err.splitlines()) == 1


def test_aliases_within_the_limit_still_work(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(
        "processors:\n"
        "  - {processor_id: a, processor_type: text_transformer,\n"
        "     parameters: &p {transformation: uppercase}}\n"
        "  - {processor_id: b, processor_type: text_transformer, parameters: *p}\n"
    )
    cfg = ConfigLoader().load_from_file(path)
    assert [p.parameters for p in cfg.processors] == [{"transformation": "uppercase"}] * 2


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("a: &a [1, *a]\nprocessors: []\n")
    with pytest.raises(ConfigurationError, match="an alias refers to a node that contains it"):
        ConfigLoader().load_from_file(path)


def test_a_config_file_past_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_files, "MAX_CONFIG_BYTES", 1024)
    path = tmp_path / "big.yaml"
    path.write_text("processors: []\n# " + "x" * 2000 + "\n")
    with pytest.raises(ConfigurationError, match="is larger than"):
        ConfigLoader().load_from_file(path)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            '{"processors": [{"processor_id": "a", "processor_type": "simple", '
            '"processor_id": "b"}]}',
            "key 'processor_id' appears twice in one object",
        ),
        ('{"graph_id": "g", "graph_id": "h", "processors": []}', "key 'graph_id' appears twice"),
        ('{"processors": [], "x": NaN}', "NaN is not a JSON number"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_json_configs_are_read_strictly(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=words):
        ConfigLoader().load_from_file(path)
    code, _, err = cli("validate", str(path))
    assert code == 2 and words in err


def test_running_out_of_memory_names_what_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("processors: []\n")

    def no_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(ConfigLoader, "load_from_dict", no_memory)
    code, _, err = cli("validate", str(path))
    assert code == 2
    assert f"config {str(path)!r}: ran out of memory while checking it (15 bytes)" in err


def test_a_memory_error_in_a_firing_says_so(tmp_path: Path) -> None:
    def hungry(x: int) -> int:
        if x == 2:
            raise MemoryError
        return x

    ex = GraphExecutor(chain([("p", hungry)]))
    with pytest.raises(ExecutionError) as info:
        ex.run(2)
    assert str(info.value) == "processor 'p' failed: MemoryError (out of memory) (item 0)"
