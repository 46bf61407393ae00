package goapi

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/testutil/retry"
)

// tryOnce keeps contention tests short: one blocking wait, then give up.
const tryOnceWait = 500 * time.Millisecond

func TestLockOpts(t *testing.T) {
	c, _ := newServer(t)
	newLock := func(value string) *api.Lock {
		l, err := c.LockOpts(&api.LockOptions{
			Key: "service/leader", Value: []byte(value), SessionTTL: "15s",
			LockTryOnce: true, LockWaitTime: tryOnceWait,
		})
		must(t, err)
		return l
	}
	first, second := newLock("first"), newLock("second")

	lost, err := first.Lock(nil)
	must(t, err)
	if lost == nil {
		t.Fatal("first lock not acquired")
	}
	if ch, err := second.Lock(nil); err != nil || ch != nil {
		t.Fatalf("second lock acquired a held lock: %v, %v", ch, err)
	}
	pair, _, err := c.KV().Get("service/leader", nil)
	must(t, err)
	if string(pair.Value) != "first" || pair.Flags != api.LockFlagValue || pair.Session == "" {
		t.Fatalf("lock key: %+v", pair)
	}

	must(t, first.Unlock())
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("unlocking did not close the lost-lock channel")
	}
	lost, err = second.Lock(nil)
	must(t, err)
	if lost == nil {
		t.Fatal("second lock not acquired after the first was released")
	}
	if err := first.Destroy(); err != api.ErrLockInUse {
		t.Fatalf("destroying a lock someone holds: %v", err)
	}

	// Invalidating the holder's session is noticed through the blocking query on the key.
	pair, _, err = c.KV().Get("service/leader", nil)
	must(t, err)
	_, err = c.Session().Destroy(pair.Session, nil)
	must(t, err)
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("losing the session did not close the lost-lock channel")
	}
	// Releasing with a session that no longer exists changes nothing and is not an error.
	must(t, second.Unlock())
	must(t, second.Destroy())
	if pair, _, err := c.KV().Get("service/leader", nil); err != nil || pair != nil {
		t.Fatalf("lock key after destroy: %+v, %v", pair, err)
	}
}

func TestSemaphoreOpts(t *testing.T) {
	c, _ := newServer(t)
	newSemaphore := func(value string) *api.Semaphore {
		s, err := c.SemaphoreOpts(&api.SemaphoreOptions{
			Prefix: "service/workers", Limit: 2, Value: []byte(value), SessionTTL: "15s",
			SemaphoreTryOnce: true, SemaphoreWaitTime: tryOnceWait,
		})
		must(t, err)
		return s
	}
	a, b, third := newSemaphore("a"), newSemaphore("b"), newSemaphore("c")
	for name, s := range map[string]*api.Semaphore{"a": a, "b": b} {
		ch, err := s.Acquire(nil)
		must(t, err)
		if ch == nil {
			t.Fatalf("slot for %s not acquired", name)
		}
	}
	if ch, err := third.Acquire(nil); err != nil || ch != nil {
		t.Fatalf("a third holder got into a semaphore of two: %v, %v", ch, err)
	}
	// Giving up destroys the waiter's session, whose delete behavior removes its contender key:
	// the two holders' keys and the .lock key remain.
	eventually(t, func(r *retry.R) {
		keys, _, err := c.KV().Keys("service/workers/", "", nil)
		if err != nil || len(keys) != 3 {
			r.Fatalf("semaphore keys: %v, %v", keys, err)
		}
	})

	must(t, a.Release())
	ch, err := third.Acquire(nil)
	must(t, err)
	if ch == nil {
		t.Fatal("slot not acquired after a release")
	}
	if err := a.Destroy(); err != api.ErrSemaphoreInUse {
		t.Fatalf("destroying a semaphore in use: %v", err)
	}
	must(t, b.Release())
	must(t, third.Release())
	must(t, third.Destroy())
	if left, _, err := c.KV().List("service/workers/", nil); err != nil || len(left) != 0 {
		t.Fatalf("semaphore keys after destroy: %+v, %v", left, err)
	}
}
