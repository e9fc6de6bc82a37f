"""The README's shell commands leave nothing behind in the repository a reader runs them from."""

from __future__ import annotations

import re

from tests.readme_transcript import differences, transcript
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


# --- the shown outputs (tests/readme_transcript.py; tests/local/test_local_stack.py runs them) -----

LOGIN = '{"access_token":"eyJhbGciOiJSUzI1NiIs…","token_type":"Bearer","expires_in":900}'
WRONG_PASSWORD = (
    '{"type":"t","title":"Unauthorized","status":401,"detail":"The username or password is incorrect."}'
)


def test_every_shell_command_of_the_readme_is_in_its_transcript() -> None:
    # Given the README / Then the transcript the local test runs holds every command it shows
    assert [step.command for step in transcript(README)] == shell_commands(README)


def test_a_body_missing_a_member_the_service_prints_is_a_difference() -> None:
    # Given the README's old wrong-password body, and the service's, which adds RFC 6749's `error`
    printed = WRONG_PASSWORD[:-1] + ',"error":"invalid_grant"}'
    # Then the comparison names the member
    assert "error" in " ".join(differences([WRONG_PASSWORD], printed))
    assert differences([printed], printed) == []


def test_a_line_the_readme_omits_is_a_difference() -> None:
    # Given create-tenant's output with the tier line the README once left out
    shown = ["created tenant t: model 0123456789ab (onnx)"]
    printed = "created tenant t: model ba9876543210 (onnx)\ntenant t is on the standard tier\n"
    # Then the count of lines differs; the model digests alone would not
    assert differences(shown, printed) != []
    assert differences(shown, printed.splitlines()[0]) == []


def test_only_what_legitimately_varies_is_let_through() -> None:
    # A shortened token matches the token it starts like, and no other
    assert differences([LOGIN], LOGIN.replace("…", "Ii.payload.signature")) == []
    assert differences([LOGIN], LOGIN.replace("eyJhbGciOiJSUzI1NiIs…", "other")) != []
    # Floats within BLAS noise match; a different answer does not
    assert differences(['{"predictions":[182.68082262676546]}'], '{"predictions":[182.6808226267651]}') == []
    assert differences(['{"predictions":[182.68082262676546]}'], '{"predictions":[182.7]}') != []
    assert differences(['{"predictions":[0,2]}'], '{"predictions":[0,1]}') != []
    # A status line or a header shown must be printed as shown; other headers may be printed too
    shown = ["HTTP/1.1 401 UNAUTHORIZED", "X-Frame-Options: DENY", "", '{"status":401}']
    printed = 'HTTP/1.1 401 UNAUTHORIZED\nDate: now\nX-Frame-Options: DENY\n\n{"status":401}'
    assert differences(shown, printed) == []
    assert differences(shown, printed.replace("DENY", "SAMEORIGIN")) != []
