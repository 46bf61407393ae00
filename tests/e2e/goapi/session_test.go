package goapi

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

func TestSessionLifecycle(t *testing.T) {
	c, srv := newServer(t)
	s := c.Session()
	id, _, err := s.Create(&api.SessionEntry{Name: "worker", TTL: "15s", Behavior: api.SessionBehaviorDelete}, nil)
	must(t, err)

	info, _, err := s.Info(id, nil)
	must(t, err)
	if info == nil || info.ID != id || info.Name != "worker" || info.Node != srv.Config.NodeName ||
		info.TTL != "15s" || info.Behavior != api.SessionBehaviorDelete {
		t.Fatalf("info: %+v", info)
	}
	// Create checks the node's serfHealth by default.
	if len(info.NodeChecks) != 1 || info.NodeChecks[0] != "serfHealth" {
		t.Fatalf("node checks: %v", info.NodeChecks)
	}

	renewed, _, err := s.Renew(id, nil)
	must(t, err)
	if renewed == nil || renewed.ID != id || renewed.TTL != "15s" {
		t.Fatalf("renew: %+v", renewed)
	}

	list, _, err := s.List(nil)
	must(t, err)
	if len(list) != 1 || list[0].ID != id {
		t.Fatalf("list: %+v", list)
	}
	onNode, _, err := s.Node(srv.Config.NodeName, nil)
	must(t, err)
	if len(onNode) != 1 || onNode[0].ID != id {
		t.Fatalf("node sessions: %+v", onNode)
	}

	// A session with the delete behavior removes the keys it holds when destroyed.
	ok, _, err := c.KV().Acquire(&api.KVPair{Key: "held", Value: []byte("x"), Session: id}, nil)
	must(t, err)
	if !ok {
		t.Fatal("acquire failed")
	}
	_, err = s.Destroy(id, nil)
	must(t, err)
	if gone, _, err := s.Info(id, nil); err != nil || gone != nil {
		t.Fatalf("info after destroy: %+v, %v", gone, err)
	}
	if renewedGone, _, err := s.Renew(id, nil); err != nil || renewedGone != nil {
		t.Fatalf("renew after destroy: %+v, %v", renewedGone, err)
	}
	if pair, _, err := c.KV().Get("held", nil); err != nil || pair != nil {
		t.Fatalf("held key after destroy: %+v, %v", pair, err)
	}
}
