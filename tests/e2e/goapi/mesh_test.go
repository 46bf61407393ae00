package goapi

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

// TestConnectRegistration: a service registered with a SidecarService gets its
// <id>-sidecar-proxy with Consul's defaults, and the Go client's Connect reads of the
// catalog and health find it; the default discovery chain is one resolver.
func TestConnectRegistration(t *testing.T) {
	client, _ := newServer(t)
	reg := &api.AgentServiceRegistration{
		Name:    "web",
		Port:    8080,
		Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{}},
	}
	must(t, client.Agent().ServiceRegister(reg))
	services, err := client.Agent().Services()
	must(t, err)
	sidecar := services["web-sidecar-proxy"]
	if sidecar == nil || sidecar.Kind != api.ServiceKindConnectProxy || sidecar.Port < 21000 || sidecar.Proxy == nil ||
		sidecar.Proxy.DestinationServiceName != "web" || sidecar.Proxy.LocalServicePort != 8080 {
		t.Fatalf("sidecar: %+v", sidecar)
	}
	listed, _, err := client.Catalog().Connect("web", "", nil)
	must(t, err)
	if len(listed) != 1 || listed[0].ServiceID != "web-sidecar-proxy" || listed[0].ServiceProxy.DestinationServiceID != "web" {
		t.Fatalf("catalog connect: %+v", listed)
	}
	healthy, _, err := client.Health().Connect("web", "", false, nil)
	must(t, err)
	if len(healthy) != 1 || len(healthy[0].Checks) < 2 {
		t.Fatalf("health connect: %+v", healthy)
	}
	chain, _, err := client.DiscoveryChain().Get("web", nil, nil)
	must(t, err)
	if chain.Chain.ServiceName != "web" || chain.Chain.StartNode != "resolver:web.default.default.dc1" {
		t.Fatalf("discovery chain: %+v", chain.Chain)
	}
	bad := &api.AgentServiceRegistration{Name: "p", Kind: api.ServiceKindConnectProxy, Port: 1}
	if err := client.Agent().ServiceRegister(bad); err == nil {
		t.Fatal("a connect-proxy without a destination was accepted")
	}
}

// TestIntentions: upsert, read, match, check and delete by name, and the authorize call a
// proxy makes, which follows each change at once.
func TestIntentions(t *testing.T) {
	client, _ := newServer(t)
	uri := "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/api"
	authorized := func() bool {
		t.Helper()
		got, err := client.Agent().ConnectAuthorize(&api.AgentAuthorizeParams{Target: "web", ClientCertURI: uri})
		must(t, err)
		return got.Authorized
	}
	if !authorized() {
		t.Fatal("denied with no intentions while ACLs are off")
	}
	_, err := client.Connect().IntentionUpsert(&api.Intention{SourceName: "api", DestinationName: "web", Action: api.IntentionActionDeny}, nil)
	must(t, err)
	_, err = client.Connect().IntentionUpsert(&api.Intention{SourceName: "*", DestinationName: "web", Action: api.IntentionActionAllow}, nil)
	must(t, err)
	got, _, err := client.Connect().IntentionGetExact("api", "web", nil)
	must(t, err)
	if got == nil || got.Action != api.IntentionActionDeny || got.Precedence != 9 {
		t.Fatalf("exact: %+v", got)
	}
	matches, _, err := client.Connect().IntentionMatch(&api.IntentionMatch{By: api.IntentionMatchDestination, Names: []string{"web"}}, nil)
	must(t, err)
	if len(matches["web"]) != 2 || matches["web"][0].SourceName != "api" {
		t.Fatalf("match: %+v", matches)
	}
	allowed, _, err := client.Connect().IntentionCheck(&api.IntentionCheck{Source: "api", Destination: "web"}, nil)
	must(t, err)
	if allowed || authorized() {
		t.Fatal("api => web allowed despite the exact deny")
	}
	_, err = client.Connect().IntentionDeleteExact("api", "web", nil)
	must(t, err)
	if !authorized() {
		t.Fatal("api => web denied after the deny was deleted")
	}
	all, _, err := client.Connect().Intentions(nil)
	must(t, err)
	if len(all) != 1 || all[0].SourceName != "*" {
		t.Fatalf("list: %+v", all)
	}
}
