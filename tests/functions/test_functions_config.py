"""``functions:`` in interlace.yaml: its written forms, included files and file:line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from interlace.config import ConfigErrors, load_config, parse_config

MODELS = """\
models:
  minilm:
    deployments:
      - provider: local
        model: all-MiniLM-L6-v2
"""

CLASSIFY = """\
    kind: classify
    model: minilm
    field: text
    labels: [a, b]
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_a_mapping_by_name_a_list_and_included_files_all_load(tmp_path: Path) -> None:
    _write(tmp_path / "fns" / "one.yaml", "name: from_file\n" + textwrap.dedent(CLASSIFY))
    _write(
        tmp_path / "fns" / "many.yaml",
        "listed_1:\n" + CLASSIFY + "listed_2:\n" + CLASSIFY.replace("[a, b]", "[x, y, z]"),
    )
    config_file = _write(
        tmp_path / "interlace.yaml",
        MODELS + "functions:\n  include: [fns/*.yaml]\n  inline:\n" + CLASSIFY.replace("    ", "    ", 1),
    )
    config = load_config(config_file, environ={})
    names = sorted(d.name for d in config.functions.definitions)
    assert names == ["from_file", "inline", "listed_1", "listed_2"]
    as_list = parse_config(
        MODELS
        + "functions:\n  - name: first\n"
        + CLASSIFY.replace("    ", "    ", 0).replace("\n    ", "\n    "),
        environ={},
    )
    assert [d.name for d in as_list.functions.definitions] == ["first"]


@pytest.mark.parametrize(
    ("definition", "line", "problem"),
    [  # MODELS is 5 lines, then "functions:" (6) and "  broken:" (7); the definition starts at 8
        ("    kind: classify\n    model: minilm\n    field: text\n    labels: [only]\n", 7, "at least two"),
        ("    model: nope\n    prompt: hi\n    output_schema: {type: object}\n", 8, "'nope' is not a model"),
        (
            "    model: minilm\n    prompt: 'Hi {{ name'\n    output_schema: {type: object}\n",
            7,
            "does not compile",
        ),
        (
            "    model: minilm\n    prompt: hi\n    output_schema: {type: objekt}\n",
            7,
            "not a valid JSON Schema",
        ),
        ("    kind: embed\n    model: minilm\n", 7, "needs field:"),
        ("    model: minilm\n    prompt: hi\n", 7, "needs output_schema"),
        ("    model: minilm\n    prompt: hi\n    output_schema: {}\n    max_repairs: 9\n", 11, "max_repairs"),
        ("    model: minilm\n    prompt: hi\n    output_shema: {}\n", 10, "did you mean 'output_schema'"),
    ],
)
def test_definition_errors_name_the_line(definition: str, line: int, problem: str) -> None:
    text = MODELS + "functions:\n  broken:\n" + definition
    with pytest.raises(ConfigErrors) as caught:
        parse_config(text, filename="interlace.yaml", environ={})
    message = str(caught.value)
    assert problem in message
    assert message.startswith(f"interlace.yaml:{line}: "), message


def test_an_error_in_an_included_file_names_that_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path / "functions" / "ok.yaml", "name: fine\n" + textwrap.dedent(CLASSIFY))
    bad = _write(
        tmp_path / "functions" / "bad.yaml",
        """\
        # a comment line
        name: broken
        kind: classify
        model: minilm
        field: text
        labels: [a, b]
        multi_label: maybe
        """,
    )
    config_file = _write(tmp_path / "interlace.yaml", MODELS + "functions:\n  include: [functions/*.yaml]\n")
    with pytest.raises(ConfigErrors) as caught:
        load_config(config_file, environ={})
    assert f"{bad}:7:" in str(caught.value)
    assert "multi_label" in str(caught.value)


def test_an_include_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    config_file = _write(tmp_path / "interlace.yaml", MODELS + "functions:\n  include: [missing/*.yaml]\n")
    with pytest.raises(ConfigErrors) as caught:
        load_config(config_file, environ={})
    assert "matches no file" in str(caught.value)
    assert "interlace.yaml:7" in str(caught.value)


def test_the_same_version_twice_is_an_error() -> None:
    text = (
        MODELS
        + "functions:\n  - name: twin\n"
        + CLASSIFY.replace("    ", "    ")
        + "  - name: twin\n"
        + CLASSIFY
    )
    with pytest.raises(ConfigErrors, match="defined twice"):
        parse_config(text, environ={})
