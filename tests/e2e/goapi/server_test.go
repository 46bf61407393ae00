// Package goapi drives waypost with HashiCorp's own Go API client (github.com/hashicorp/consul/api),
// started through the same harness Consul's API tests use (sdk/testutil). The harness execs
// "consul agent -config-file ..." from PATH; tests/e2e/test_go_api.py puts a "consul" there
// that runs "waypost agent", so each test gets a real waypost agent fed the harness's config.
package goapi

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/testutil"
	"github.com/hashicorp/consul/sdk/testutil/retry"
)

// newServer starts a waypost agent with the harness's default configuration and waits until it
// has a leader and its node carries the serfHealth check. Like Consul's own API tests it tries
// the start three times: the harness gives an agent two seconds to answer HTTP, which a loaded
// machine can exceed. Tests run one after another for the same reason.
func newServer(t *testing.T) (*api.Client, *testutil.TestServer) {
	t.Helper()
	var srv *testutil.TestServer
	retry.RunWith(retry.ThreeTimes(), t, func(r *retry.R) {
		var err error
		if srv, err = testutil.NewTestServerConfigT(r, nil); err != nil {
			r.Fatalf("starting the agent through the harness: %v", err)
		}
	})
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stopping the agent: %v", err)
		}
	})
	srv.WaitForLeader(t)
	srv.WaitForSerfCheck(t)
	cfg := api.DefaultConfig()
	cfg.Address = srv.HTTPAddr
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client, srv
}

// eventually retries f for a few seconds, for effects the agent applies asynchronously.
func eventually(t *testing.T, f func(r *retry.R)) {
	t.Helper()
	retry.RunWith(&retry.Timer{Timeout: 10 * time.Second, Wait: 50 * time.Millisecond}, t, f)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
