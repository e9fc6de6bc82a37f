"""The README's shell commands leave nothing behind in the repository a reader runs them from."""

from __future__ import annotations

import re

from tests.support import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def shell_commands(markdown: str) -> list[str]:
    """Every `$ ` command in the README's code blocks, with its `\\` continuation lines joined."""
    commands: list[str] = []
    for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", markdown, flags=re.DOTALL):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ "):
                command, j = line[2:], i
                while command.endswith("\\") and j + 1 < len(lines):
                    j += 1
                    command = command[:-1] + " " + lines[j].strip()
                commands.append(command)
    return commands


def files_written_in_the_working_directory(command: str) -> list[str]:
    """Relative paths a command redirects into, or hands to curl as `@file` (read, so created before)."""
    targets = re.findall(r"(?<![<>0-9&])>>?\s*([^\s|;&]+)", command)
    targets += [path for path in re.findall(r"@([^\s'\"]+)", command) if path != "-"]
    return [t for t in targets if not t.startswith(("/", "$", "~", "&"))]


def test_the_walkthrough_has_commands() -> None:
    # Given the README, Then its walkthrough is there to check (curl against the local stack)
    assert sum("curl" in command for command in shell_commands(README)) >= 5


def test_no_command_writes_a_file_into_the_repository() -> None:
    # Given every shell command the README asks a reader to run
    # When the files they redirect into or read with curl's @ are collected
    written = {c: files_written_in_the_working_directory(c) for c in shell_commands(README)}
    # Then none is a relative path: temporary files, if any, go outside the repository
    assert {command: paths for command, paths in written.items() if paths} == {}


def test_the_check_catches_a_file_left_in_the_repository() -> None:
    # Given the walkthrough's old oversized-batch step, which wrote big.json where it ran
    old = "python3 -c 'print(1)' > big.json && curl -s -d @big.json http://127.0.0.1:3000/"
    # Then the check names the file
    assert files_written_in_the_working_directory(old) == ["big.json", "big.json"]
