"""``jan chat`` in a real pseudo-terminal and ``jan run`` with pipes, against a real server.

The server listens on a free, non-default port and no command gets ``--url``: they find it
through the data folder's address file.
"""

from __future__ import annotations

import os
import re

import pytest
from cli_fixtures import JAN, OTHER_MODEL, jan, messages_of, text_of
from cli_fixtures import served as served  # noqa: F401 - the module-scoped server fixture
from conftest import need

try:
    import pexpect
except ImportError:  # in the test extra; reported by the fixture below
    pexpect = None
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _needs_pexpect() -> None:
    need(pexpect is not None, "pexpect is not installed (pip install -e '.[test]')")
PROMPT = ">>> "


def spawn(folder, *args: str):
    child = pexpect.spawn(JAN[0], [*JAN[1:], "chat", "--data-folder", str(folder), *args],
                          encoding="utf-8", timeout=90, env={**os.environ, "NO_COLOR": "1"},
                          dimensions=(40, 200))
    child.expect(PROMPT)
    return child


def leave_with_two_ctrl_c(child) -> str:
    child.sendintr()
    child.expect("Ctrl-C again")
    child.expect(PROMPT)
    child.sendintr()
    child.expect(r"Saved as thread (\S+)")
    thread_id = child.match.group(1)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    return thread_id


def test_repl_commands_interrupt_paste_and_model_switch(served):
    folder, server = served
    child = spawn(folder, "--model", "smol-a", "--max-tokens", "12")
    assert "smol-a" in child.before
    child.sendline("/help")
    child.expect("/resume")
    child.expect(PROMPT)

    # Ctrl-C during a long reply stops it, keeps the partial reply and returns to the prompt.
    child.sendline("/set max_tokens 1500")
    child.expect("max_tokens = 1500")
    child.expect(PROMPT)
    child.sendline("Tell me a very long story about a lighthouse keeper.")
    child.expect("lighthouse keeper.\r\n")
    child.expect(r"\(saved as thread \S+\)\r\n")  # the first turn is saved at once
    child.expect(r"\w{3}")  # the reply has started streaming
    child.sendintr()
    child.expect(r"\[reply interrupted")
    child.expect(PROMPT)

    # A two-line paste is one turn; a """ block too; a max_tokens cut is marked.
    child.sendline("/set max_tokens 8")
    child.expect(PROMPT)
    child.send("first pasted line\nsecond pasted line\n")
    child.expect("cut at max_tokens")
    child.expect(PROMPT)
    child.sendline('"""')
    child.expect(r"\.\.\. ")
    child.sendline("block one")
    child.sendline('block two"""')
    child.expect("cut at max_tokens")
    child.expect(PROMPT)

    # Switching model mid-conversation; an unknown one is refused and the model kept.
    child.sendline("/model nope")
    child.expect("unknown model 'nope'")
    child.expect(PROMPT)
    child.sendline(f"/model {OTHER_MODEL}")
    child.expect(f"now chatting with {OTHER_MODEL}")
    child.expect(PROMPT)
    child.sendline("And one more thing.")
    child.expect("cut at max_tokens")
    child.expect(PROMPT)
    thread_id = leave_with_two_ctrl_c(child)

    saved = messages_of(server, thread_id)
    roles = [m["role"] for m in saved]
    assert roles == ["user", "assistant"] * 4, roles
    assert text_of(saved[0]).startswith("Tell me a very long story")
    assert saved[1]["metadata"]["interrupted"] == "true" and text_of(saved[1])
    assert text_of(saved[2]) == "first pasted line\nsecond pasted line"
    assert saved[3]["metadata"]["finish_reason"] == "length"
    assert text_of(saved[4]) == "block one\nblock two"
    assert saved[5]["metadata"]["model"] == "smol-a"
    assert saved[7]["metadata"]["model"] == OTHER_MODEL


def test_resume_new_retry_and_threads(served):
    folder, server = served
    child = spawn(folder, "--model", "smol-a", "--max-tokens", "6")
    child.sendline("Name a colour.")
    child.expect(PROMPT)
    child.sendline("/retry")
    child.expect(PROMPT)
    child.sendline("/exit")
    child.expect(r"Saved as thread (\S+)")
    thread_id = child.match.group(1)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert [m["role"] for m in messages_of(server, thread_id)] == ["user", "assistant"]

    child = spawn(folder, "--thread", thread_id, "--model", "smol-a", "--max-tokens", "6")
    assert f"resumed thread {thread_id}" in child.before
    child.sendline("/threads")
    child.expect(thread_id)
    child.expect(PROMPT)
    child.sendline("And another?")
    child.expect(PROMPT)
    child.sendline("/new")
    child.expect("new thread")
    child.expect(PROMPT)
    child.sendline("/resume")  # the most recently active thread: the one just continued
    child.expect(f"resumed thread {thread_id}")
    child.expect(PROMPT)
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert [m["role"] for m in messages_of(server, thread_id)] == ["user", "assistant"] * 2


def test_jan_run_reads_a_pipe_and_streams_to_stdout(served):
    folder, server = served
    done = jan(folder, "run", "smol-a", "Summarise:", "--max-tokens", "5",
               input="The sea is large and blue.\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and done.stdout.endswith("\n")
    assert "cut at max_tokens" in done.stderr
    missing = jan(folder, "run", "nope", "hi")
    assert missing.returncode == 1 and "Available models" in missing.stderr


def test_jan_run_into_a_closed_pipe_is_quiet(served):
    folder, _ = served
    cmd = " ".join([*JAN, "run", "smol-a", "Count", "to", "ten", "--max-tokens", "30",
                    "--data-folder", str(folder)])
    done = pexpect.run(f"/bin/sh -c '{cmd} | head -c 1 >/dev/null; echo status=$?'",
                       encoding="utf-8", timeout=90)
    assert "status=0" in done and "Traceback" not in done and "BrokenPipe" not in done


def test_unknown_model_and_failed_turns_exit_non_zero(served):
    folder, _ = served
    done = jan(folder, "chat", "--model", "no-such-model", input="hi\n")
    assert done.returncode == 1
    assert "unknown model 'no-such-model'" in done.stderr and "smol-a" in done.stderr
    failed = jan(folder, "chat", "--model", "smol-a", "--max-tokens", "-1", input="hi\n")
    assert failed.returncode == 1 and re.search(r"error: .*max_tokens", failed.stderr), \
        failed.stderr
    assert "Traceback" not in done.stderr + failed.stderr
