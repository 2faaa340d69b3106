"""``produce``, ``examples push`` and ``taxonomy push``: every problem of a file, with its line, before
anything is published; and every command's ``--help`` has an example.

The broker here is unreachable on purpose: a file that fails validation must end with the list
of problems (nothing was sent), a file that passes reaches the publish step and says it could
not publish. Publishing to the real broker: tests/integration/test_cli_publish.py.
"""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from app.cli import cli
from app.devtools import samples
from app.settings import get_settings

NO_BROKER = "kafka://127.0.0.1:1"


@pytest.fixture(autouse=True)
def fresh_settings():
    get_settings.cache_clear()  # commands read the environment CliRunner sets
    yield
    get_settings.cache_clear()


def run(*args: str):
    return CliRunner().invoke(cli, list(args), env={"LABELSTREAM_BROKER": NO_BROKER})


def lines(path, docs) -> None:
    path.write_text("\n".join(d if isinstance(d, str) else json.dumps(d) for d in docs) + "\n")


def example(eid: str, vector: list[float], label: str = "sport") -> dict:
    return {"id": eid, "class": "Article", "vector": vector, "labels": {"topic": label}}


def test_examples_push_lists_every_bad_line_and_publishes_nothing(tmp_path):
    f = tmp_path / "ex.jsonl"
    lines(f, [example("a", [0.1, 0.2, 0.3]),
              '{"id": "b", "class": ',                                    # 2: not JSON
              example("c", [0.1, 0.2]),                                   # 3: dimension differs from line 1
              {"id": "d", "class": "Article", "labels": {"topic": "x"}},  # 4: neither vector nor text
              "",
              {**example("e", [1, 2, 3]), "labels": {"topic": ""}},      # 6: empty label
              {**example("f", [1, 2, 3]), "record": "taxonomy"}])         # 7: wrong command
    out = run("examples", "push", str(f))
    assert out.exit_code == 1
    got = out.output.strip().splitlines()
    assert got == [f"{f}:2: not valid JSON: unexpected end of data at column 22",  # JSON first
                   f"labelstream: {f}: nothing published (1 problem(s))"]
    lines(f, [example("a", [0.1, 0.2, 0.3]), {**example("f", [1, 2, 3]), "record": "taxonomy"}])
    assert run("examples", "push", str(f)).output.strip().splitlines() == [  # then one command, one kind
        f"{f}:2: record is 'taxonomy', this command pushes 'example' records",
        f"labelstream: {f}: nothing published (1 problem(s))"]

    lines(f, [example("a", [0.1, 0.2, 0.3]), example("c", [0.1, 0.2]),
              {"id": "d", "class": "Article", "labels": {"topic": "x"}}, {**example("e", [1, 2, 3]), "labels": {"topic": ""}}])
    out = run("examples", "push", str(f))
    got = out.output.strip().splitlines()
    assert out.exit_code == 1 and len(got) == 4, out.output
    assert got[0].startswith(f"{f}:2: vector_dimension_mismatch: class Article has dimension 3, the example's vector has 2")
    assert got[1].startswith(f"{f}:3: ")
    assert got[2].startswith(f"{f}:4: schema_violation: ") and "labels.topic" in got[2]
    assert got[3] == f"labelstream: {f}: nothing published (3 problem(s))"


def test_a_valid_examples_file_goes_on_to_publish(tmp_path):
    f = tmp_path / "ex.jsonl"
    lines(f, [example("a", [0.1, 0.2, 0.3]), example("b", [0.3, 0.2, 0.1], "news")])
    out = run("examples", "push", str(f))
    assert out.exit_code == 1 and out.output.startswith(f"labelstream: could not publish to {NO_BROKER}: ")


def test_taxonomy_push_checks_the_taxonomy_and_names_the_item(tmp_path):
    good = dict(samples.COMMENT_TAXONOMY)
    del good["record"]  # may be left out
    cyclic = {**good, "name": "cyclic", "classes": [{"name": "a", "prompts": ["x"], "parent": "b"},
                                                     {"name": "b", "prompts": ["y"], "parent": "a"}]}
    f = tmp_path / "tax.json"
    f.write_text(json.dumps([good, cyclic, {**good, "version": "two"}]))
    out = run("taxonomy", "push", str(f))
    got = out.output.strip().splitlines()
    assert out.exit_code == 1, out.output
    assert got[0].startswith(f"{f}[1]: invalid_taxonomy: ") and "cycle" in got[0]
    assert got[1].startswith(f"{f}[2]: schema_violation: version: ")
    assert got[2] == f"labelstream: {f}: nothing published (2 problem(s))"

    f.write_text(json.dumps(good))  # one object: passes, goes on to publish
    assert run("taxonomy", "push", str(f)).output.startswith("labelstream: could not publish")


def test_produce_needs_a_key_in_each_line_unless_told_otherwise(tmp_path):
    f = tmp_path / "objs.jsonl"
    lines(f, [{"id": "a", "class": "A"}, {"class": "A"}, [1, 2], {"id": {"x": 1}}])
    out = run("produce", str(f), "--topic", "objects")
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == [
        f"{f}:3: expected a JSON object, got list",
        f"labelstream: {f}: nothing published (1 problem(s))"]
    lines(f, [{"id": "a", "class": "A"}, {"class": "A"}, {"id": {"x": 1}}])
    assert run("produce", str(f), "--topic", "objects").output.strip().splitlines() == [
        f"{f}:2: no 'id' field (the record's key): use --key-field or --no-key",
        f"{f}:3: 'id' must be a non-empty string or an integer, got {{'x': 1}}",
        f"labelstream: {f}: nothing published (2 problem(s))"]
    assert run("produce", str(f), "--topic", "objects", "--no-key").output.startswith("labelstream: could not publish")
    assert run("produce", str(f), "--topic", "nope").output.startswith("labelstream: unknown topic 'nope': one of ")
    assert run("produce", str(tmp_path / "missing.jsonl"), "--topic", "objects").output.startswith(
        f"{tmp_path / 'missing.jsonl'}: cannot read: No such file or directory")


def _commands(group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,)


def test_every_command_has_help_with_an_example():
    commands = list(_commands(typer.main.get_command(cli)))
    assert {("produce",), ("examples", "push"), ("taxonomy", "push"), ("tail",), ("jobs", "start"),
            ("jobs", "status"), ("jobs", "list"), ("jobs", "watch")} <= set(commands)
    for path in commands:
        out = CliRunner().invoke(cli, [*path, "--help"], env={"COLUMNS": "200"})
        assert out.exit_code == 0, path
        assert "Example:" in out.output and f"labelstream {' '.join(path)}" in out.output, path
