package goapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/testutil"
	"github.com/hashicorp/consul/sdk/testutil/retry"
)

// TestClientAgentBlockingReads: through a client agent, the Go client's blocking reads
// (answered there from views kept by the servers' delta streams) wake on writes made on the
// server, with indexes that only grow, for service health, the service list and a KV tree.
func TestClientAgentBlockingReads(t *testing.T) {
	server, srv := newServer(t)
	var agent *testutil.TestServer
	retry.RunWith(retry.ThreeTimes(), t, func(r *retry.R) {
		var err error
		agent, err = testutil.NewTestServerConfigT(r, func(c *testutil.TestServerConfig) {
			c.Server = false
			c.Bootstrap = false
		})
		if err != nil {
			r.Fatalf("starting the client agent through the harness: %v", err)
		}
	})
	t.Cleanup(func() { _ = agent.Stop() })
	cfg := api.DefaultConfig()
	cfg.Address = agent.HTTPAddr
	client, err := api.NewClient(cfg)
	must(t, err)
	must(t, client.Agent().Join(fmt.Sprintf("127.0.0.1:%d", srv.Config.Ports.Server), false))
	eventually(t, func(r *retry.R) {
		if leader, err := client.Status().Leader(); err != nil || leader == "" {
			r.Fatalf("no leader through the client agent yet: %q, %v", leader, err)
		}
	})

	register := func(node string) {
		_, err := server.Catalog().Register(&api.CatalogRegistration{
			Node: node, Address: "192.0.2.1", Service: &api.AgentService{Service: "web", Port: 80},
		}, nil)
		must(t, err)
	}
	register("ext-1")
	_, first, err := client.Health().Service("web", "", false, &api.QueryOptions{WaitIndex: 1})
	must(t, err)
	_, services, err := client.Catalog().Services(&api.QueryOptions{WaitIndex: 1})
	must(t, err)
	_, err = server.KV().Put(&api.KVPair{Key: "app/one", Value: []byte("1")}, nil)
	must(t, err)
	_, tree, err := client.KV().List("app/", &api.QueryOptions{WaitIndex: 1})
	must(t, err)

	type woken struct {
		what  string
		count int
		index uint64
		err   error
	}
	wait := func(index uint64) *api.QueryOptions {
		return &api.QueryOptions{WaitIndex: index, WaitTime: 30 * time.Second}
	}
	results := make(chan woken, 3)
	go func() {
		entries, meta, err := client.Health().Service("web", "", false, wait(first.LastIndex))
		results <- woken{"health", len(entries), meta.LastIndex, err}
	}()
	go func() {
		names, meta, err := client.Catalog().Services(wait(services.LastIndex))
		results <- woken{"services", len(names), meta.LastIndex, err}
	}()
	go func() {
		pairs, meta, err := client.KV().List("app/", wait(tree.LastIndex))
		results <- woken{"kv", len(pairs), meta.LastIndex, err}
	}()
	time.Sleep(300 * time.Millisecond)
	register("ext-2")
	_, err = server.Catalog().Register(&api.CatalogRegistration{
		Node: "ext-3", Address: "192.0.2.3", Service: &api.AgentService{Service: "db", Port: 5432},
	}, nil)
	must(t, err)
	_, err = server.KV().Put(&api.KVPair{Key: "app/two", Value: []byte("2")}, nil)
	must(t, err)

	want := map[string]struct {
		count int
		after uint64
	}{
		"health":   {2, first.LastIndex},
		"services": {3, services.LastIndex},
		"kv":       {2, tree.LastIndex},
	}
	for i := 0; i < 3; i++ {
		select {
		case got := <-results:
			must(t, got.err)
			if got.count != want[got.what].count || got.index <= want[got.what].after {
				t.Fatalf("%s woke with %d rows at index %d (before: %d)", got.what, got.count, got.index, want[got.what].after)
			}
		case <-time.After(40 * time.Second):
			t.Fatal("a blocking read through the client agent did not wake")
		}
	}
}
