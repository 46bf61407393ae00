package goapi

import (
	"bytes"
	"io"
	"testing"
)

func TestSnapshotSaveRestore(t *testing.T) {
	c, srv := newServer(t)
	srv.SetKVString(t, "snap/kept", "before")
	srv.SetKVString(t, "snap/removed", "before")

	body, meta, err := c.Snapshot().Save(nil)
	must(t, err)
	snapshot, err := io.ReadAll(body)
	body.Close()
	must(t, err)
	if len(snapshot) == 0 || meta.LastIndex == 0 {
		t.Fatalf("snapshot: %d bytes, index %d", len(snapshot), meta.LastIndex)
	}

	srv.SetKVString(t, "snap/kept", "after")
	_, err = c.KV().Delete("snap/removed", nil)
	must(t, err)
	srv.SetKVString(t, "snap/added", "after")

	must(t, c.Snapshot().Restore(nil, bytes.NewReader(snapshot)))
	for key, want := range map[string]string{"snap/kept": "before", "snap/removed": "before"} {
		pair, _, err := c.KV().Get(key, nil)
		must(t, err)
		if pair == nil || string(pair.Value) != want {
			t.Fatalf("%s after restore: %+v", key, pair)
		}
	}
	if pair, _, err := c.KV().Get("snap/added", nil); err != nil || pair != nil {
		t.Fatalf("a key written after the snapshot survived the restore: %+v, %v", pair, err)
	}
}
