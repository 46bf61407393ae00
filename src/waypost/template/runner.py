"""The ``waypost template`` daemon: render, watch, wait for quiescence, write, run commands.

Each pass renders, against the shared brain, the templates whose data changed and whose
quiescence (their own ``wait`` or the global one) is over; dependencies first seen are
watched (one watch each, whichever templates share it). Changed files are written and
the commands of the templates that changed run once per change set, in template order,
each with its timeout. ``-once`` stops after the first complete pass; ``-dry`` prints
instead of writing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import sys
import time
from typing import TextIO

from waypost.client import ApiClient, ApiError
from waypost.durations import format_duration
from waypost.template.config import Config, TemplateSpec, Wait, parse_signal
from waypost.template.dedup import Dedup
from waypost.template.deps import Dependency
from waypost.template.errors import TemplateError
from waypost.template.output import write_if_changed
from waypost.template.render import CompiledTemplate, RenderResult
from waypost.template.watcher import Watcher

__all__ = ["Runner", "RunnerError"]

log = logging.getLogger("waypost.template")


class RunnerError(Exception):
    """The run cannot go on (a template that does not parse, a write that fails...)."""


class Runner:
    """One ``waypost template`` run over a configuration; ``run()`` until stopped or done."""

    def __init__(self, config: Config, api: ApiClient, *, stdout: TextIO | None = None) -> None:
        self.config = config
        self.api = api
        self.stdout = stdout or sys.stdout
        self._changed = asyncio.Event()
        self.watcher = Watcher(
            api,
            on_change=self._changed.set,
            once=config.once,
            block_wait=config.block_query_wait,
            stale=config.max_stale > 0,
        )
        self.templates: list[tuple[TemplateSpec, CompiledTemplate]] = []
        self.passes = 0
        self.last_pass_seconds = 0.0
        self._results: dict[int, RenderResult] = {}
        self._reload = False
        self._pending: dict[int, tuple[float, float]] = {}
        """Templates with a change not rendered yet: (first, last) change times."""
        self._rendered: set[int] = set()
        """Templates rendered here (not taken from a de-duplication leader)."""
        self._publish: list[tuple[int, str]] = []
        self.dedup: Dedup | None = None
        self.child: asyncio.subprocess.Process | None = None

    def load(self) -> None:
        """Read and parse every template; RunnerError names the file and line of a bad one."""
        self.templates = []
        self._results.clear()
        self._rendered.clear()
        self._pending.clear()
        for spec in self.config.templates:
            if spec.source:
                try:
                    with open(spec.source, encoding="utf-8") as f:
                        text = f.read()
                except OSError as err:
                    raise RunnerError(f"template {spec.source}: {err.strerror}") from None
            else:
                text = spec.contents
            try:
                compiled = CompiledTemplate(
                    spec.name,
                    text,
                    err_on_failed_lookup=self.config.err_on_failed_lookup,
                    missing_key_error=spec.error_on_missing_key,
                    delims=(spec.left_delimiter, spec.right_delimiter),
                )
            except TemplateError as err:
                raise RunnerError(f"{spec.name}: parse: {err}") from None
            self.templates.append((spec, compiled))

    def reload(self) -> None:
        """Re-read every template before the next pass (consul-template's SIGHUP)."""
        self._reload = True
        self._changed.set()

    def _wait_of(self, i: int) -> Wait:
        """Template ``i``'s quiescence: its own ``wait`` block, else the global one."""
        own = self.templates[i][0].wait
        return own if own is not None else self.config.wait

    def _due_at(self, i: int) -> float:
        """When template ``i``'s pending change may render: ``min`` after the last change,
        but no later than ``max`` after the first (consul-template's quiescence)."""
        first, last = self._pending[i]
        wait = self._wait_of(i)
        if self.config.once or not wait.enabled:
            return last
        return min(last + wait.min, first + wait.max)

    def _note_changes(self, now: float) -> None:
        changed, self.watcher.changed = self.watcher.changed, set()
        if not changed:
            return
        for i, result in self._results.items():
            if result.used & changed:
                first = self._pending[i][0] if i in self._pending else now
                self._pending[i] = (first, now)

    # -- one pass --------------------------------------------------------------------
    def render_pass(self) -> tuple[bool, list[tuple[TemplateSpec, RenderResult]]]:
        """Render the templates whose data changed and whose quiescence is over (all of them
        the first time); the complete results are returned for writing."""
        now = time.monotonic()
        self._note_changes(now)
        used: set[Dependency] = set()
        done: list[tuple[TemplateSpec, RenderResult]] = []
        complete = True
        for i, (spec, compiled) in enumerate(self.templates):
            previous = self._results.get(i)
            if self.dedup is not None and not self.dedup.leader[i]:
                shared = self.dedup.shared[i]
                complete = complete and shared is not None
                if shared is not None and (previous is None or previous.output != shared):
                    self._results[i] = RenderResult(shared)
                    done.append((spec, self._results[i]))
                continue
            due = i in self._pending and self._due_at(i) <= now
            if previous is None or not previous.complete or due or i not in self._rendered:
                self._rendered.add(i)
                self._pending.pop(i, None)
                try:
                    previous = self._results[i] = compiled.render(self.watcher.brain)
                except TemplateError as err:
                    raise RunnerError(f"{spec.name}: execute: {err}") from None
                if previous.complete:
                    done.append((spec, previous))
                    if self.dedup is not None:
                        self._publish.append((i, previous.output))
            used |= previous.used
            complete = complete and previous.complete
        self.watcher.ensure(used)
        if complete:
            self.watcher.retain(used)
        return complete, done

    def write(self, done: list[tuple[TemplateSpec, RenderResult]]) -> tuple[list[list[str]], int]:
        """Apply the outputs; the commands of the changed templates, deduplicated, in order."""
        commands: list[list[str]] = []
        written = 0
        for spec, result in done:
            if self.config.dry:
                self.stdout.write(f"> {spec.destination}\n{result.output}")
                self.stdout.flush()
                continue
            try:
                changed = write_if_changed(
                    spec.destination,
                    result.output,
                    perms=spec.perms,
                    backup=spec.backup,
                    create_dirs=spec.create_dest_dirs,
                )
                for extra in result.files:
                    write_if_changed(
                        extra.path, extra.content, perms=extra.perms, user=extra.user, group=extra.group,
                        append=extra.append,
                    )  # fmt: skip
            except (OSError, ValueError) as err:
                raise RunnerError(f"{spec.name}: writing {spec.destination}: {err}") from None
            if changed:
                written += 1
                log.info("rendered %s => %s", spec.name, spec.destination)
                if spec.command and spec.command not in commands:
                    commands.append(spec.command)
        return commands, written

    async def run_command(self, command: list[str], limit: float) -> bool:
        try:
            proc = await asyncio.create_subprocess_exec(*_argv(command), start_new_session=True)
        except OSError as err:
            log.error("command %s: %s", _show(command), err)
            return False
        try:
            code = await asyncio.wait_for(proc.wait(), limit)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            log.error("command %s timed out after %s", _show(command), format_duration(limit))
            return False
        if code != 0:
            log.error("command %s exited with %d", _show(command), code)
        return code == 0

    # -- the loop --------------------------------------------------------------------
    async def run(self) -> int:
        """0 after a complete ``-once`` pass or a clean stop; non-zero on any fatal error."""
        try:
            self.load()
            if self.config.dedup:
                texts = [compiled.template.text for _, compiled in self.templates]
                self.dedup = Dedup(self.api, self.config.dedup_prefix, texts, self._changed.set)
                await self.dedup.start()
            while True:
                if self.watcher.error is not None:
                    log.error("cannot continue: %s", self.watcher.error)
                    return 1
                if self._reload:
                    self._reload = False
                    self.load()
                    log.info("reloaded %d templates", len(self.templates))
                self._changed.clear()
                started = time.perf_counter()
                complete, done = self.render_pass()
                commands, written = self.write(done)
                self.last_pass_seconds = time.perf_counter() - started
                await self._share()
                self.passes += 1
                ok = True
                for command in commands:
                    timeout = next(s.command_timeout for s, _ in self.templates if s.command == command)
                    ok = await self.run_command(command, timeout) and ok
                if complete:
                    if self.config.once:
                        return 0 if ok else 1
                    await self._exec_after_pass(written)
                if self.child is not None and self.child.returncode is not None:
                    return self.child.returncode
                await self._wait_for_change()
        except RunnerError as err:
            log.error("%s", err)
            return 1
        finally:
            await self.watcher.close()
            await self._stop_child()
            if self.dedup is not None:
                await self.dedup.close()

    async def _share(self) -> None:
        """As a de-duplication leader, hand this pass's outputs to the followers."""
        publish, self._publish = self._publish, []
        for i, output in publish:
            assert self.dedup is not None
            try:
                await self.dedup.publish(i, output)
            except ApiError as err:
                log.warning("dedup: publishing %s: %s", self.templates[i][0].name, err)

    async def _wait_for_change(self) -> None:
        """Until new data arrives, a pending template's quiescence ends, or the exec child exits."""
        self._note_changes(time.monotonic())
        if self._pending:
            due = min(self._due_at(i) for i in self._pending)
            if due <= time.monotonic():
                return
        waiter = asyncio.ensure_future(self._changed.wait())
        child = asyncio.ensure_future(self.child.wait()) if self.child is not None else None
        timeout = min(self._due_at(i) for i in self._pending) - time.monotonic() if self._pending else None
        try:
            await asyncio.wait(
                [t for t in (waiter, child) if t is not None],
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel()
            if child is not None:
                child.cancel()

    # -- exec mode -------------------------------------------------------------------
    async def _exec_after_pass(self, written: int) -> None:
        spec = self.config.exec
        if spec is None or not spec.command:
            return
        if self.child is None or self.child.returncode is not None:
            self.child = await asyncio.create_subprocess_exec(*_argv(spec.command))
            log.info("exec: started %s (pid %d)", _show(spec.command), self.child.pid)
            return
        if not written:
            return
        if spec.reload_signal:
            self.child.send_signal(parse_signal(spec.reload_signal))
        else:
            await self._stop_child()
            await self._exec_after_pass(written)

    async def _stop_child(self) -> None:
        child, self.child = self.child, None
        if child is None or child.returncode is not None or self.config.exec is None:
            return
        child.send_signal(parse_signal(self.config.exec.kill_signal or "SIGTERM"))
        try:
            await asyncio.wait_for(child.wait(), self.config.exec.kill_timeout)
        except TimeoutError:
            child.kill()
            await child.wait()


def _argv(command: list[str]) -> list[str]:
    """consul-template's rule: one string runs through ``sh -c``, a list runs as is."""
    return ["sh", "-c", command[0]] if len(command) == 1 else command


def _show(command: list[str]) -> str:
    """A command as the user wrote it: a shell string as is, an argv quoted."""
    return command[0] if len(command) == 1 else shlex.join(command)
