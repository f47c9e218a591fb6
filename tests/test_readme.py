"""Every code block in the README runs: Python blocks as written, and each `python -m zoo` command line.

A command that finishes in seconds on the committed artifacts (list, sample, serve, --help) runs for real in
a scratch folder; one that trains, converts a download or measures for minutes is parsed and its options
checked exactly as the CLI would before running it (a mistyped or removed option fails here). Blocks that are
not code (folder listings) are marked ```text.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest

from zoo.core.runtime.paths import EXPORTED_DIR, REPO_ROOT

README = os.path.join(REPO_ROOT, "README.md")
# what only runs for minutes, needs other machines or a download: checked, not run
PARSED_ONLY = ("train", "finetune", "export", "evaluate", "convert", "serve")  # serve: a server runs until stopped


def code_blocks():
    """``(language, first line number, text)`` of each fenced block."""
    blocks, lines = [], open(README, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
        match = re.match(r"^```(\w*)$", lines[i])
        if match:
            end = lines.index("```", i + 1)
            blocks.append((match.group(1), i + 1, "\n".join(lines[i + 1 : end])))
            i = end
        i += 1
    return blocks


def zoo_commands():
    """Each ``python -m zoo ...`` of the shell blocks, as ``(line, argv after zoo)``."""
    found = []
    for language, line, text in code_blocks():
        if language in ("python", "text"):
            continue
        for command in text.replace("\\\n", " ").splitlines():
            words = shlex.split(command, comments=True)
            starts = [i for i in range(len(words)) if words[i : i + 3] == ["python", "-m", "zoo"]]
            if starts:
                argv = words[starts[0] + 3 :]
                ends = [i for i, word in enumerate(argv) if word in ("&&", "&")]  # the shell's, not zoo's
                found.append((line, argv[: ends[0]] if ends else argv))
    return found


def test_every_block_is_python_shell_or_marked_text():
    languages = {language for language, _, _ in code_blocks()}
    assert languages <= {"", "python", "text"}, languages
    assert len(zoo_commands()) >= 20  # the README's quick tour and model sections


@pytest.mark.slow
@pytest.mark.parametrize("line, argv", zoo_commands(), ids=[" ".join(a)[:60] for _, a in zoo_commands()])
def test_readme_command(line, argv, tmp_path, monkeypatch, capsys):
    from zoo.__main__ import build_parser, main, parse

    if "<command>" in argv:  # the README's placeholder line: every command's --help instead
        for command in ("train", "export", "sample", "evaluate"):
            assert main([command, "dcgan", "--help"]) == 0
        return
    monkeypatch.chdir(tmp_path)
    if argv[0] in PARSED_ONLY:
        from zoo.core.recipes.options import resolve
        from zoo.core.recipes.registry import CONVERTERS, get_recipe, recipe_for_converted

        args = vars(parse(build_parser(), argv))
        command, name = args.pop("command"), args.pop("model", None)
        if command == "serve":  # model names, each exported
            from zoo.core.runtime.runners import read_manifest

            for model in name:
                read_manifest(os.path.join(EXPORTED_DIR, model))
        elif command != "convert":  # every option exists and its value is allowed
            converted = command == "finetune" and name in CONVERTERS  # finetune keras-hub --base FOLDER
            resolve(recipe_for_converted(name) if converted else get_recipe(name), command, args)
        return
    assert main(argv) == 0, f"README.md line {line}: python -m zoo {shlex.join(argv)}"


@pytest.mark.slow
def test_the_python_block_runs_as_written(tmp_path):
    """The "From Python" block, in a fresh process in a scratch folder (it trains a tiny model: seconds)."""
    (block,) = [text for language, _, text in code_blocks() if language == "python"]
    result = subprocess.run([sys.executable, "-c", block + "\nassert images.shape[0] == 16\n"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(tmp_path / "my_exports" / "dcgan" / "manifest.json")
