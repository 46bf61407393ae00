"""Consul's client-side lock and semaphore recipes, over sessions and the KV store.

They follow the Go api package's wire protocol (key names, flag values, the
semaphore's ``{"Limit", "Holders"}`` document) so that a ``waypost lock`` and a
``consul lock`` — or any program using Consul's api.Lock — contend correctly on
the same prefix.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from typing import Any

from waypost.cli.client import Client, ClientError, QueryValue, StatusError

__all__ = ["LOCK_FLAG", "SEMAPHORE_FLAG", "InUse", "Lock", "LockError", "Semaphore", "Session"]

#: Written as the KV flags of every lock key, so a lock is never mistaken for data (api.LockFlagValue).
LOCK_FLAG = 0x2DDCCBC058A50C18
#: The semaphore's counterpart (api.SemaphoreFlagValue).
SEMAPHORE_FLAG = 0xE0F69A2BAA414DE0
LOCK_KEY = ".lock"
SESSION_TTL = "15s"
#: How long one acquisition attempt blocks before looking again, in seconds.
WAIT_TIME = 15.0
#: After a failed acquire with no holder, a lock-delay is running: poll instead of blocking.
RETRY_TIME = 5.0


class LockError(Exception):
    pass


class InUse(LockError):
    """Cleanup found another holder; not an error for the command."""


class Session:
    """A TTL session renewed in the background; destroying it releases whatever it still holds."""

    def __init__(self, client: Client, name: str, ttl: str = SESSION_TTL) -> None:
        self.client = client
        body = json.dumps({"Name": name, "TTL": ttl}).encode()
        self.id: str = client.put("/v1/session/create", None, body).json()["ID"]
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, args=(_seconds(ttl) / 2,), daemon=True)
        self._thread.start()

    def _renew(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.client.put(f"/v1/session/renew/{self.id}", timeout=period)
            except StatusError as exc:
                if exc.status == 404:
                    self.lost.set()
                    return
            except ClientError:
                continue

    def destroy(self) -> None:
        self._stop.set()
        with contextlib.suppress(ClientError):
            self.client.put(f"/v1/session/destroy/{self.id}")


def _seconds(ttl: str) -> float:
    from waypost.durations import parse_duration

    return parse_duration(ttl)


def _wait(deadline: float | None) -> str:
    """The ``wait`` of one blocking read: the usual wait, cut short by a -timeout deadline."""
    remaining = WAIT_TIME if deadline is None else max(0.001, min(WAIT_TIME, deadline - time.monotonic()))
    return f"{int(remaining * 1000)}ms"


class _Held:
    """Shared acquire/monitor plumbing: ``lost`` is set when the holder no longer holds."""

    def __init__(self, client: Client, session: Session, monitor_retries: int) -> None:
        self.client = client
        self.session = session
        self.monitor_retries = monitor_retries
        self.lost = threading.Event()
        self._stop = threading.Event()

    def _still_held(self, index: int) -> tuple[int, bool]:
        raise NotImplementedError

    def _monitor(self) -> None:
        index, retries = 0, self.monitor_retries
        while not self._stop.is_set():
            if self.session.lost.is_set():
                break
            try:
                index, held = self._still_held(index)
            except StatusError as exc:
                if exc.status >= 500 and retries > 0:
                    retries -= 1
                    self._stop.wait(1.0)
                    continue
                break
            except ClientError:
                if retries > 0:
                    retries -= 1
                    self._stop.wait(1.0)
                    continue
                break
            retries = self.monitor_retries
            if not held:
                break
        if not self._stop.is_set():
            self.lost.set()

    def _start_monitor(self) -> None:
        threading.Thread(target=self._monitor, daemon=True).start()

    def stop_monitor(self) -> None:
        self._stop.set()


class Lock(_Held):
    """api.Lock: one holder, marked by the session on ``PREFIX/.lock``."""

    def __init__(self, client: Client, prefix: str, session: Session, monitor_retries: int = 3) -> None:
        super().__init__(client, session, monitor_retries)
        self.key = f"{prefix.rstrip('/')}/{LOCK_KEY}" if prefix else LOCK_KEY

    def _read(self, index: int, wait: str | None = None) -> tuple[int, dict[str, Any] | None]:
        resp = self.client.get(f"/v1/kv/{self.key}", {"index": index or None, "wait": wait}, allow=(200, 404))
        pairs = resp.json() if resp.status == 200 else None
        return resp.index, (pairs[0] if pairs else None)

    def acquire(self, deadline: float | None) -> bool:
        """Block until held; False when ``deadline`` (monotonic) passes first."""
        index = 0
        while deadline is None or time.monotonic() < deadline:
            index, pair = self._read(index, _wait(deadline))
            if pair is not None and pair.get("Flags") != LOCK_FLAG:
                raise LockError("Existing key does not match lock use")
            if pair is not None and pair.get("Session") == self.session.id:
                self._start_monitor()
                return True
            if pair is not None and pair.get("Session"):
                continue
            query: dict[str, QueryValue] = {"acquire": self.session.id, "flags": LOCK_FLAG}
            if self.client.put(f"/v1/kv/{self.key}", query, b"").json() is True:
                self._start_monitor()
                return True
            index, pair = self._read(0)
            if pair is None or not pair.get("Session"):
                time.sleep(
                    RETRY_TIME if deadline is None else max(0.0, min(RETRY_TIME, deadline - time.monotonic()))
                )
                index = 0
        return False

    def _still_held(self, index: int) -> tuple[int, bool]:
        new_index, pair = self._read(index)
        return new_index, pair is not None and pair.get("Session") == self.session.id

    def release(self) -> None:
        self.stop_monitor()
        self.client.put(f"/v1/kv/{self.key}", {"release": self.session.id, "flags": LOCK_FLAG}, b"")

    def cleanup(self) -> None:
        """Delete the lock key if nobody holds it (api.Lock.Destroy)."""
        _, pair = self._read(0)
        if pair is None:
            return
        if pair.get("Flags") != LOCK_FLAG:
            raise LockError("Existing key does not match lock use")
        if pair.get("Session"):
            raise InUse("Lock in use")
        self.client.delete(f"/v1/kv/{self.key}", {"cas": pair.get("ModifyIndex", 0)})


class Semaphore(_Held):
    """api.Semaphore: contenders under PREFIX/<session>, holders listed in PREFIX/.lock, CAS-updated."""

    def __init__(
        self, client: Client, prefix: str, limit: int, session: Session, monitor_retries: int = 3
    ) -> None:
        super().__init__(client, session, monitor_retries)
        self.prefix = prefix.rstrip("/") + "/"
        self.limit = limit
        self.lock_key = self.prefix + LOCK_KEY
        self.contender_key = self.prefix + session.id

    def _list(self, index: int, wait: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        query = {"recurse": True, "index": index or None, "wait": wait}
        resp = self.client.get(f"/v1/kv/{self.prefix}", query, allow=(200, 404))
        return resp.index, (resp.json() if resp.status == 200 else []) or []

    def _decode(self, pairs: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        pair = next((p for p in pairs if p["Key"] == self.lock_key), None)
        if pair is None:
            return None, {"Limit": self.limit, "Holders": {}}
        if pair.get("Flags") != SEMAPHORE_FLAG:
            raise LockError("Existing key does not match semaphore use")
        doc = json.loads(base64.b64decode(pair.get("Value") or "") or b"{}")
        doc["Holders"] = doc.get("Holders") or {}
        if doc.get("Limit") != self.limit:
            raise LockError(f"Semaphore limit conflict (lock: {doc.get('Limit')}, local: {self.limit})")
        return pair, doc

    def _prune(self, doc: dict[str, Any], pairs: list[dict[str, Any]]) -> None:
        alive = {p.get("Session") for p in pairs if p.get("Session")}
        doc["Holders"] = {s: True for s in doc["Holders"] if s in alive}

    def _cas(self, pair: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
        query = {"cas": pair.get("ModifyIndex", 0) if pair else 0, "flags": SEMAPHORE_FLAG}
        return self.client.put(f"/v1/kv/{self.lock_key}", query, json.dumps(doc).encode()).json() is True

    def acquire(self, deadline: float | None) -> bool:
        query: dict[str, QueryValue] = {"acquire": self.session.id, "flags": SEMAPHORE_FLAG}
        if self.client.put(f"/v1/kv/{self.contender_key}", query, b"").json() is not True:
            raise LockError("Failed to make contender entry")
        index = 0
        while deadline is None or time.monotonic() < deadline:
            index, pairs = self._list(index, _wait(deadline))
            pair, doc = self._decode(pairs)
            self._prune(doc, pairs)
            if self.session.id in doc["Holders"]:
                self._start_monitor()
                return True
            if len(doc["Holders"]) >= self.limit:
                continue
            doc["Holders"][self.session.id] = True
            if self._cas(pair, doc):
                self._start_monitor()
                return True
            index = 0
        self.client.delete(f"/v1/kv/{self.contender_key}")
        return False

    def _still_held(self, index: int) -> tuple[int, bool]:
        new_index, pairs = self._list(index)
        _, doc = self._decode(pairs)
        return new_index, self.session.id in doc["Holders"]

    def release(self) -> None:
        self.stop_monitor()
        for _ in range(100):
            _, pairs = self._list(0)
            pair, doc = self._decode(pairs)
            if self.session.id not in doc["Holders"]:
                break
            del doc["Holders"][self.session.id]
            if self._cas(pair, doc):
                break
        self.client.delete(f"/v1/kv/{self.contender_key}")

    def cleanup(self) -> None:
        """Delete the semaphore's lock key once no live holder remains (api.Semaphore.Destroy)."""
        _, pairs = self._list(0)
        pair, doc = self._decode(pairs)
        if pair is None:
            return
        self._prune(doc, pairs)
        if doc["Holders"]:
            raise InUse("Semaphore in use")
        self.client.delete(f"/v1/kv/{self.lock_key}", {"cas": pair.get("ModifyIndex", 0)})
