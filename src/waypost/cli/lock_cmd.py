"""``waypost lock``: run a command only while holding a cluster-wide lock or semaphore slot.

Cron jobs and deploy scripts wrap themselves in ``consul lock`` so that one host
(or N with ``-n``) does the work at a time; if the lock is lost the child is
terminated, since it can no longer assume exclusivity.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from types import FrameType

from waypost.cli import ui
from waypost.cli.client import ClientError, connect
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.cli.locking import InUse, Lock, LockError, Semaphore, Session

USAGE = """
Usage: waypost lock [options] prefix child...

  Acquires a lock or semaphore at a given path, and invokes a child process
  when successful. The child process can assume the lock is held while it
  executes. If the lock is lost or communication is disrupted the child process
  is sent SIGTERM and, after a grace period, killed.

  When -n=1, only a single lock holder exists, providing mutual exclusion.
  Setting a higher value switches to a semaphore allowing that many holders.
  The prefix provided must have write privileges.

      $ waypost lock service/backup/lock ./run-backup.sh
      $ waypost lock -n=3 -timeout=30s jobs/reindex 'reindex --shard $(hostname)'
"""

#: Between SIGTERM and SIGKILL for a child whose lock was lost (Consul's lockKillGracePeriod).
KILL_GRACE = 5.0


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def _flags() -> FlagSet:
    fs = FlagSet(USAGE)
    fs.boolean(
        "child-exit-code",
        False,
        "Exit 2 if the child process exited with an error if this is true, "
        "otherwise this doesn't propagate an error from the child. The default value is false.",
    )
    fs.integer(
        "n",
        1,
        "Optional limit on the number of concurrent lock holders. The underlying implementation "
        "switches from a lock to a semaphore when the value is greater than 1. The default value is 1.",
    )
    fs.integer(
        "monitor-retry",
        3,
        "Number of times to retry if the agent returns a 500 error while monitoring "
        "the lock. The default value is 3, with a 1s wait between retries.",
    )
    fs.string(
        "name",
        "",
        "Optional name to associate with the lock session. If not provided, one is "
        "generated based on the provided child command.",
        "string",
    )
    fs.boolean("pass-stdin", False, "Pass stdin to the child process.")
    fs.boolean(
        "shell",
        True,
        "Use a shell to run the command (can set a custom shell via the SHELL environment variable).",
    )
    fs.duration(
        "timeout",
        0.0,
        "Maximum amount of time to wait to acquire the lock, specified as a duration "
        'like "1s" or "3h". The default value is 0 (wait forever).',
    )
    fs.duration("try", 0.0, "DEPRECATED. Use -timeout instead.")
    fs.boolean("verbose", False, "Enable verbose (debugging) output.")
    return fs


def _start_child(args: list[str], opts: Parsed) -> subprocess.Popen[bytes]:
    argv = [os.environ.get("SHELL") or "/bin/sh", "-c", " ".join(args)] if opts.boolean("shell") else args
    env = {**os.environ, "CONSUL_LOCK_HELD": "true"}
    stdin = None if opts.boolean("pass-stdin") else subprocess.DEVNULL
    return subprocess.Popen(argv, env=env, stdin=stdin)


def _kill(child: subprocess.Popen[bytes], verbose: bool) -> None:
    if verbose:
        ui.output(f"Terminating child pid {child.pid}")
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        if verbose:
            ui.output(f"Killing child pid {child.pid}")
        child.kill()
        child.wait()


def _hold(holder: Lock | Semaphore, session: Session, args: list[str], opts: Parsed) -> int:
    """Run the child while held; the child's failure as Consul reports it (2 with -child-exit-code)."""
    verbose = opts.boolean("verbose")
    try:
        child = _start_child(args, opts)
    except OSError as exc:
        ui.error(f"Error starting handler: {exc}")
        return 2
    try:
        while True:
            try:
                code = child.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                if holder.lost.is_set() or session.lost.is_set():
                    if verbose:
                        ui.output("Lock lost, killing child")
                    _kill(child, verbose)
                    return 0
                continue
            if code != 0:
                ui.error(f"Error running handler: exit status {code}")
            if verbose:
                ui.output("Child terminated, releasing lock")
            return 2 if code != 0 else 0
    except _Stop:
        if verbose:
            ui.output("Shutdown triggered, killing child")
        _kill(child, verbose)
        return 0


def _run(opts: Parsed) -> int:
    limit = opts.integer("n")
    timeout = opts.seconds("timeout") or opts.seconds("try")
    if limit <= 0:
        ui.error("Lock holder limit must be positive")
        return 1
    if len(opts.args) < 2:
        ui.error("Key prefix and child command must be specified")
        return 1
    prefix, child_args = opts.args[0].lstrip("/"), list(opts.args[1:])
    if timeout < 0:
        ui.error("Timeout must be positive")
        return 1
    if opts.integer("monitor-retry") < 0:
        ui.error("Number for 'monitor-retry' must be >= 0")
        return 1
    name = opts.string("name") or f"Waypost lock for '{' '.join(child_args)}' at '{prefix}'"
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    connected = connect(opts)
    if connected is None:
        return 1
    client = connected[0]
    try:
        session = Session(client, name)
    except ClientError as exc:
        ui.error(f"Lock setup failed: {exc}")
        return 1
    try:
        return _locked(session, prefix, child_args, opts, limit, timeout)
    finally:
        session.destroy()


def _locked(
    session: Session, prefix: str, child_args: list[str], opts: Parsed, limit: int, timeout: float
) -> int:
    retries, verbose = opts.integer("monitor-retry"), opts.boolean("verbose")
    holder: Lock | Semaphore
    if limit == 1:
        holder = Lock(session.client, prefix, session, retries)
        setup = f"Setting up lock at path: {holder.key}"
    else:
        holder = Semaphore(session.client, prefix, limit, session, retries)
        setup = f"Setting up semaphore (limit {limit}) at prefix: {prefix}"
    if verbose:
        ui.output(setup)
        ui.output("Attempting lock acquisition")
    try:
        acquired = holder.acquire(time.monotonic() + timeout if timeout > 0 else None)
    except _Stop:
        acquired = False
    except (LockError, ClientError) as exc:
        ui.error(f"Lock acquisition failed: {exc}")
        return 1
    if not acquired:
        ui.error("Shutdown triggered or timeout during lock acquisition")
        return 1
    child_code = _hold(holder, session, child_args, opts)
    # Releasing takes a moment; a second Ctrl-C must not leave the lock held until the session expires.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        holder.release()
    except (LockError, ClientError) as exc:
        ui.error(f"Lock release failed: {exc}")
        return 1
    try:
        holder.cleanup()
        if verbose:
            ui.output("Cleanup succeeded")
    except InUse:
        if verbose:
            ui.output("Cleanup aborted, lock in use")
    except (LockError, ClientError) as exc:
        ui.error(f"Lock cleanup failed: {exc}")
        return 1
    return child_code if opts.boolean("child-exit-code") else 0


def run(argv: Sequence[str]) -> int:
    return run_with_flags(_flags(), argv, _run)
