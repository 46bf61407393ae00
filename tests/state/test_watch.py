from __future__ import annotations

from waypost.state.watch import Topics


async def test_only_waiters_on_touched_topics_wake() -> None:
    topics = Topics()
    web = topics.park([("service", "web")])
    db = topics.park([("service", "db")])
    topics.touch([("service", "web")], 5)
    assert web.future is not None
    assert not web.future.done()
    topics.flush()
    assert web.future is not None
    assert web.future.done()
    assert not db.future.done()
    assert topics.index(("service", "web")) == 5
    topics.unpark(web)
    topics.unpark(db)
    assert topics.waiter_count() == 0


async def test_kv_prefix_waiters_wake_for_keys_below_them_only() -> None:
    topics = Topics()
    under = topics.park([("kv-prefix", "app/")])
    root = topics.park([("kv-prefix", "")])
    other = topics.park([("kv-prefix", "db/")])
    topics.touch_kv("app/x", 7)
    topics.flush()
    assert under.future.done()
    assert root.future.done()
    assert not other.future.done()


async def test_tracked_prefix_gets_an_index() -> None:
    topics = Topics()
    topics.track([("kv-prefix", "app/")])
    topics.touch_kv("app/x", 9)
    topics.touch_kv("other", 10)
    assert topics.index(("kv-prefix", "app/")) == 9


async def test_callback_waiters_run_on_flush_and_only_once() -> None:
    topics = Topics()
    calls: list[str] = []
    waiter = topics.park([("service", "web"), ("nodes",)], lambda: calls.append("woken"))
    topics.touch([("service", "web"), ("nodes",)], 3)
    assert calls == []
    topics.flush()
    assert calls == ["woken"]
    waiter.wake()
    assert calls == ["woken"]
