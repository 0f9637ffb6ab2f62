"""``jan chat``'s read-eval-print loop: turns, slash commands, Ctrl-C, saving as it goes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import httpx

from .chat_client import (
    SETTABLE,
    ChatError,
    Reply,
    ThreadSaver,
    check_model,
    get_json,
    load_thread,
    message_text,
    model_ids,
    stream_reply,
)
from .repl_input import EOF, INTERRUPT, LineSource, open_lines, read_turn

HELP = """Commands:
  /help              this help
  /model [ID]        show the models, or switch to ID (the conversation continues)
  /new               start a new thread
  /threads           list recent threads
  /resume [ID]       continue a saved thread (default: the most recent)
  /system TEXT       set the system prompt (/system alone clears it)
  /set PARAM VALUE   set a sampling parameter (/set alone shows them; /set PARAM clears it)
  /retry             ask again for the last reply
  /exit              leave (also Ctrl-D, or Ctrl-C twice at an empty prompt)
Paste multi-line text as is, or wrap it in \"\"\" ... \"\"\". Ctrl-C stops a reply."""


class Repl:
    def __init__(self, client: httpx.AsyncClient, *, model: str, system: str | None,
                 params: dict[str, Any], save: bool, out: TextIO, err: TextIO,
                 stdin: TextIO) -> None:
        self.client, self.model, self.system, self.params = client, model, system, params
        self.out, self.err, self.stdin = out, err, stdin
        self.interactive = stdin.isatty()
        self.history: list[dict[str, str]] = []
        self.saver = ThreadSaver(client, err, enabled=save)
        self.failed = False
        self.reply_task: asyncio.Task[None] | None = None
        self.last_reply_id: str | None = None
        self.lines: LineSource | None = None

    def info(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def error(self, text: str) -> None:
        self.failed = True
        self.info(f"error: {text}")

    # ---------------------------------------------------------------- the loop
    async def run(self, first_thread: str | None = None) -> int:
        loop = asyncio.get_running_loop()
        self.lines = open_lines(self.stdin)
        loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        try:
            if first_thread:
                await self.resume(first_thread)  # a ChatError here ends the command
            self._banner()
            await self._loop()
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            self.lines.close()
        if self.saver.thread_id:
            self.info(f"Saved as thread {self.saver.thread_id}")
        return 1 if self.failed else 0

    def _banner(self) -> None:
        model = "the server's default model" if self.model == "*" else self.model
        where = f"thread {self.saver.thread_id}" if self.saver.thread_id else "a new thread"
        hint = "; /help for commands, /exit to leave" if self.interactive else ""
        self.info(f"Chatting with {model} in {where}{hint}.")

    def _on_sigint(self) -> None:
        if self.reply_task is not None and not self.reply_task.done():
            self.reply_task.cancel()
        elif self.lines is not None:
            self.lines.interrupt()

    async def _loop(self) -> None:
        armed = False  # a Ctrl-C at the prompt arms; a second one leaves
        assert self.lines is not None
        while True:
            turn = await read_turn(self.lines, self.out, ">>> ", "... ", self.interactive)
            if turn is EOF:
                if self.interactive:
                    self.out.write("\n")
                return
            if turn is INTERRUPT:
                if armed:
                    self.out.write("\n")
                    return
                armed = True
                self.out.write("\n")
                self.info("(Ctrl-C again to leave, or /exit)")
                continue
            armed = False
            text = str(turn)
            if not text.strip():
                continue
            if text.startswith("/") and "\n" not in text.strip():
                if await self.command(text.strip()) == "exit":
                    return
                continue
            await self.turn(text)

    # ---------------------------------------------------------------- turns
    def _messages(self) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + self.history

    async def turn(self, text: str) -> None:
        self.history.append({"role": "user", "content": text})
        new = self.saver.thread_id is None
        await self.saver.save_user(text, self.model)
        if new and self.saver.thread_id and self.interactive:
            self.info(f"(saved as thread {self.saver.thread_id})")
        await self._answer()

    async def _answer(self) -> None:
        body: dict[str, Any] = {"model": self.model, "messages": self._messages(),
                                "stream": True, **self.params}
        reply = Reply(model=self.model)
        self.reply_task = asyncio.ensure_future(stream_reply(self.client, body, reply, self.out))
        try:
            await self.reply_task
        except asyncio.CancelledError:
            if not self.reply_task.cancelled():
                raise  # we ourselves are being cancelled
            reply.interrupted = True
        except ChatError as exc:
            reply.error = str(exc)
        except httpx.HTTPError as exc:
            reply.error = f"lost the server: {exc}"
        finally:
            self.reply_task = None
            self.lines and self.lines.discard_pending()
        if reply.parts:
            self.out.write("\n")
            self.out.flush()
        self._report(reply)
        if reply.text:
            self.history.append({"role": "assistant", "content": reply.text})
            self.last_reply_id = await self.saver.save_reply(reply)
        elif not reply.interrupted:
            self.history.pop()  # a failed turn is not part of the conversation

    def _report(self, reply: Reply) -> None:
        if self.model == "*" and reply.model != "*":
            self.model = reply.model  # now we know which one the server picked
        if reply.error:
            self.error(reply.error)
        elif reply.interrupted:
            self.info("[reply interrupted" + (": the partial reply is saved]"
                                              if reply.text else "]"))
        elif reply.finish_reason == "length":
            self.info("[reply cut at max_tokens; /set max_tokens N for longer replies]")

    # ---------------------------------------------------------------- commands
    async def command(self, line: str) -> str | None:
        name, _, arg = line.partition(" ")
        handlers: dict[str, Callable[[str], Awaitable[str | None]]] = {
            "/help": self.cmd_help, "/?": self.cmd_help, "/model": self.cmd_model,
            "/new": self.cmd_new, "/threads": self.cmd_threads, "/resume": self.cmd_resume,
            "/system": self.cmd_system, "/set": self.cmd_set, "/retry": self.cmd_retry,
            "/exit": self.cmd_exit, "/quit": self.cmd_exit, "/bye": self.cmd_exit,
        }
        handler = handlers.get(name)
        if handler is None:
            self.info(f"unknown command {name}; /help lists them")
            return None
        try:
            return await handler(arg.strip())
        except ChatError as exc:
            # In a terminal a mistyped id is feedback, not a failure of the session.
            self.info(f"error: {exc}") if self.interactive else self.error(str(exc))
        except httpx.HTTPError as exc:
            self.error(f"lost the server: {exc}")
        return None

    async def cmd_help(self, arg: str) -> None:
        self.info(HELP)

    async def cmd_exit(self, arg: str) -> str:
        return "exit"

    async def cmd_model(self, arg: str) -> None:
        if not arg:
            self.info(f"model: {self.model}; available: {', '.join(await model_ids(self.client))}")
            return
        self.model = await check_model(self.client, arg)
        self.info(f"now chatting with {self.model}")

    async def cmd_new(self, arg: str) -> None:
        self.history, self.saver.thread_id, self.last_reply_id = [], None, None
        self.info(f"new thread with {self.model}")

    async def cmd_threads(self, arg: str) -> None:
        page = await get_json(self.client, "/v1/threads", limit=20, order="desc")
        for t in page.get("data", []):
            title = t.get("title") or (t.get("metadata") or {}).get("title") or "(untitled)"
            self.info(f"{t['id']}  {title}")
        if not page.get("data"):
            self.info("no threads yet")

    async def cmd_resume(self, arg: str) -> None:
        await self.resume(arg or None)

    async def resume(self, thread_id: str | None) -> bool:
        if thread_id is None:
            page = await get_json(self.client, "/v1/threads", limit=1, order="desc")
            if not page.get("data"):
                self.info("no thread to resume")
                return False
            thread_id = page["data"][0]["id"]
        thread, messages = await load_thread(self.client, thread_id)
        self.history = [{"role": m["role"], "content": message_text(m)} for m in messages
                        if m.get("role") in ("user", "assistant") and message_text(m)]
        self.saver.thread_id, self.last_reply_id = thread["id"], None
        title = thread.get("title") or (thread.get("metadata") or {}).get("title") or ""
        self.info(f"resumed thread {thread['id']} {title!r} ({len(messages)} messages)")
        for m in self.history[-4:]:
            self.info(f"  {m['role']}: {' '.join(m['content'].split())[:100]}")
        return True

    async def cmd_system(self, arg: str) -> None:
        self.system = arg or None
        self.info("system prompt set" if arg else "system prompt cleared")

    async def cmd_set(self, arg: str) -> None:
        if not arg:
            self.info(json.dumps(self.params) if self.params else "no parameters set")
            return
        name, _, value = arg.partition(" ")
        if name not in SETTABLE:
            self.info(f"unknown parameter {name}; one of: {', '.join(sorted(SETTABLE))}")
            return
        if not value.strip():
            self.params.pop(name, None)
            self.info(f"{name} cleared")
            return
        try:
            self.params[name] = SETTABLE[name](value.strip())
        except ValueError:
            self.info(f"{name} needs a {SETTABLE[name].__name__}, not {value.strip()!r}")
            return
        self.info(f"{name} = {self.params[name]!r}")

    async def cmd_retry(self, arg: str) -> None:
        if not self.history or self.history[-1]["role"] != "assistant":
            if self.history and self.history[-1]["role"] == "user":
                await self._answer()  # the last turn had no reply: ask for one
            else:
                self.info("nothing to retry")
            return
        self.history.pop()
        with contextlib.suppress(Exception):
            await self.saver.forget(self.last_reply_id)
        await self._answer()
