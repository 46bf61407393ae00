package goapi

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/hashicorp/consul/api"
)

func TestKVPutGetListDelete(t *testing.T) {
	c, _ := newServer(t)
	kv := c.KV()

	if pair, _, err := kv.Get("app/missing", nil); err != nil || pair != nil {
		t.Fatalf("missing key: got %v, %v", pair, err)
	}
	for _, key := range []string{"app/config/a", "app/config/b", "app/other"} {
		_, err := kv.Put(&api.KVPair{Key: key, Value: []byte("v-" + key), Flags: 42}, nil)
		must(t, err)
	}
	pair, meta, err := kv.Get("app/config/a", nil)
	must(t, err)
	if pair == nil || !bytes.Equal(pair.Value, []byte("v-app/config/a")) || pair.Flags != 42 {
		t.Fatalf("get: %+v", pair)
	}
	if meta.LastIndex == 0 || pair.CreateIndex == 0 || pair.ModifyIndex != pair.CreateIndex {
		t.Fatalf("indexes: meta %d, create %d, modify %d", meta.LastIndex, pair.CreateIndex, pair.ModifyIndex)
	}

	pairs, _, err := kv.List("app/config/", nil)
	must(t, err)
	if len(pairs) != 2 || pairs[0].Key != "app/config/a" || pairs[1].Key != "app/config/b" {
		t.Fatalf("list: %+v", pairs)
	}
	keys, _, err := kv.Keys("app/", "/", nil)
	must(t, err)
	if want := []string{"app/config/", "app/other"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys with separator: got %v, want %v", keys, want)
	}

	_, err = kv.Delete("app/other", nil)
	must(t, err)
	if pair, _, err := kv.Get("app/other", nil); err != nil || pair != nil {
		t.Fatalf("deleted key: got %v, %v", pair, err)
	}
	_, err = kv.DeleteTree("app/", nil)
	must(t, err)
	pairs, _, err = kv.List("app/", nil)
	must(t, err)
	if len(pairs) != 0 {
		t.Fatalf("after delete-tree: %+v", pairs)
	}
}

func TestKVCheckAndSet(t *testing.T) {
	c, _ := newServer(t)
	kv := c.KV()

	// ModifyIndex 0 means "only if the key does not exist".
	ok, _, err := kv.CAS(&api.KVPair{Key: "cas", Value: []byte("one")}, nil)
	must(t, err)
	if !ok {
		t.Fatal("create with cas=0 failed")
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "cas", Value: []byte("again")}, nil)
	must(t, err)
	if ok {
		t.Fatal("cas=0 overwrote an existing key")
	}
	pair, _, err := kv.Get("cas", nil)
	must(t, err)
	stale := pair.ModifyIndex
	ok, _, err = kv.CAS(&api.KVPair{Key: "cas", Value: []byte("two"), ModifyIndex: stale}, nil)
	must(t, err)
	if !ok {
		t.Fatal("cas with the current index failed")
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "cas", Value: []byte("three"), ModifyIndex: stale}, nil)
	must(t, err)
	if ok {
		t.Fatal("cas with a stale index succeeded")
	}
	ok, _, err = kv.DeleteCAS(&api.KVPair{Key: "cas", ModifyIndex: stale}, nil)
	must(t, err)
	if ok {
		t.Fatal("delete-cas with a stale index succeeded")
	}
	pair, _, err = kv.Get("cas", nil)
	must(t, err)
	if string(pair.Value) != "two" {
		t.Fatalf("value after CAS: %q", pair.Value)
	}
	ok, _, err = kv.DeleteCAS(&api.KVPair{Key: "cas", ModifyIndex: pair.ModifyIndex}, nil)
	must(t, err)
	if !ok {
		t.Fatal("delete-cas with the current index failed")
	}
}

func TestKVAcquireRelease(t *testing.T) {
	c, _ := newServer(t)
	kv := c.KV()
	first, _, err := c.Session().CreateNoChecks(&api.SessionEntry{Name: "first"}, nil)
	must(t, err)
	second, _, err := c.Session().CreateNoChecks(&api.SessionEntry{Name: "second"}, nil)
	must(t, err)

	ok, _, err := kv.Acquire(&api.KVPair{Key: "leader", Value: []byte("first"), Session: first}, nil)
	must(t, err)
	if !ok {
		t.Fatal("first acquire failed")
	}
	ok, _, err = kv.Acquire(&api.KVPair{Key: "leader", Value: []byte("second"), Session: second}, nil)
	must(t, err)
	if ok {
		t.Fatal("a second session acquired a held lock")
	}
	pair, _, err := kv.Get("leader", nil)
	must(t, err)
	if pair.Session != first || pair.LockIndex != 1 || string(pair.Value) != "first" {
		t.Fatalf("held lock: %+v", pair)
	}
	ok, _, err = kv.Release(&api.KVPair{Key: "leader", Session: second}, nil)
	must(t, err)
	if ok {
		t.Fatal("a session released a lock it does not hold")
	}
	ok, _, err = kv.Release(&api.KVPair{Key: "leader", Session: first}, nil)
	must(t, err)
	if !ok {
		t.Fatal("release failed")
	}
	pair, _, err = kv.Get("leader", nil)
	must(t, err)
	if pair.Session != "" || pair.LockIndex != 1 {
		t.Fatalf("released lock: %+v", pair)
	}
	ok, _, err = kv.Acquire(&api.KVPair{Key: "leader", Session: second}, nil)
	must(t, err)
	if !ok {
		t.Fatal("acquire after release failed")
	}
	pair, _, err = kv.Get("leader", nil)
	must(t, err)
	if pair.Session != second || pair.LockIndex != 2 {
		t.Fatalf("re-acquired lock: %+v", pair)
	}
}
