package goapi

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

func TestTxnKV(t *testing.T) {
	c, _ := newServer(t)
	ok, resp, _, err := c.Txn().Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "txn/a", Value: []byte("1"), Flags: 7}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "txn/b", Value: []byte("2")}},
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: "txn/c", Value: []byte("3"), Index: 0}},
		{KV: &api.KVTxnOp{Verb: api.KVGet, Key: "txn/a"}},
	}, nil)
	must(t, err)
	if !ok || len(resp.Errors) != 0 || len(resp.Results) != 4 {
		t.Fatalf("txn: ok=%v %+v", ok, resp)
	}
	// Writes answer without the value, reads with it.
	if got := resp.Results[0].KV; got.Key != "txn/a" || got.Value != nil || got.Flags != 7 {
		t.Fatalf("set result: %+v", got)
	}
	if got := resp.Results[3].KV; got.Key != "txn/a" || string(got.Value) != "1" {
		t.Fatalf("get result: %+v", got)
	}
	index := resp.Results[0].KV.ModifyIndex

	// One failing check rolls the whole transaction back and is reported by its position.
	ok, resp, _, err = c.Txn().Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "txn/d", Value: []byte("4")}},
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: "txn/a", Index: index + 1000}},
	}, nil)
	must(t, err)
	if ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 || resp.Errors[0].What == "" {
		t.Fatalf("failing txn: ok=%v %+v", ok, resp)
	}
	if pair, _, err := c.KV().Get("txn/d", nil); err != nil || pair != nil {
		t.Fatalf("a rolled back write is visible: %+v, %v", pair, err)
	}

	// The older KV-only form of the same endpoint.
	ok, kvResp, _, err := c.KV().Txn(api.KVTxnOps{
		{Verb: api.KVCheckIndex, Key: "txn/a", Index: index},
		{Verb: api.KVDeleteTree, Key: "txn/"},
	}, nil)
	must(t, err)
	if !ok || len(kvResp.Errors) != 0 {
		t.Fatalf("kv txn: ok=%v %+v", ok, kvResp)
	}
	if left, _, err := c.KV().List("txn/", nil); err != nil || len(left) != 0 {
		t.Fatalf("after delete-tree in a txn: %+v, %v", left, err)
	}
}

func TestTxnCatalog(t *testing.T) {
	c, _ := newServer(t)
	ok, resp, _, err := c.Txn().Txn(api.TxnOps{
		{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: api.Node{Node: "txn-node", Address: "192.0.2.20"}}},
		{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: "txn-node",
			Service: api.AgentService{ID: "queue-1", Service: "queue", Port: 5672}}},
		{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{
			Node: "txn-node", CheckID: "queue-up", Name: "queue up", Status: api.HealthPassing, ServiceID: "queue-1"}}},
	}, nil)
	must(t, err)
	if !ok {
		t.Fatalf("catalog txn: %+v", resp.Errors)
	}
	if len(resp.Results) != 3 || resp.Results[0].Node == nil || resp.Results[1].Service == nil || resp.Results[2].Check == nil {
		t.Fatalf("catalog txn results: %+v", resp.Results)
	}
	entries, _, err := c.Health().Service("queue", "", true, nil)
	must(t, err)
	if len(entries) != 1 || entries[0].Node.Address != "192.0.2.20" || entries[0].Service.Port != 5672 {
		t.Fatalf("health of the service the txn registered: %+v", entries)
	}
}
