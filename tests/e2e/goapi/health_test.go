package goapi

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

func TestHealthServiceChecksState(t *testing.T) {
	c, srv := newServer(t)
	agent := c.Agent()
	must(t, agent.ServiceRegister(&api.AgentServiceRegistration{
		ID: "web-1", Name: "web", Port: 8080, Tags: []string{"v1"},
		Check: &api.AgentServiceCheck{TTL: "30s"},
	}))

	entries, _, err := c.Health().Service("web", "", false, nil)
	must(t, err)
	if len(entries) != 1 || entries[0].Service.ID != "web-1" || entries[0].Node.Node != srv.Config.NodeName {
		t.Fatalf("health service: %+v", entries)
	}
	statuses := map[string]string{}
	for _, check := range entries[0].Checks {
		statuses[check.CheckID] = check.Status
	}
	if statuses["serfHealth"] != api.HealthPassing || statuses["service:web-1"] != api.HealthCritical {
		t.Fatalf("checks of the entry: %v", statuses)
	}
	if passing, _, err := c.Health().Service("web", "v1", true, nil); err != nil || len(passing) != 0 {
		t.Fatalf("passing-only before the TTL passed: %+v, %v", passing, err)
	}

	must(t, agent.PassTTL("service:web-1", "ready"))
	passing, _, err := c.Health().Service("web", "v1", true, nil)
	must(t, err)
	if len(passing) != 1 || passing[0].Checks.AggregatedStatus() != api.HealthPassing {
		t.Fatalf("passing-only after the TTL passed: %+v", passing)
	}

	checks, _, err := c.Health().Checks("web", nil)
	must(t, err)
	if len(checks) != 1 || checks[0].CheckID != "service:web-1" || checks[0].Output != "ready" {
		t.Fatalf("health checks: %+v", checks)
	}
	node, _, err := c.Health().Node(srv.Config.NodeName, nil)
	must(t, err)
	if len(node) != 2 {
		t.Fatalf("health node: %+v", node)
	}

	must(t, agent.FailTTL("service:web-1", "down"))
	critical, _, err := c.Health().State(api.HealthCritical, nil)
	must(t, err)
	if len(critical) != 1 || critical[0].CheckID != "service:web-1" || critical[0].Output != "down" {
		t.Fatalf("state critical: %+v", critical)
	}
	all, _, err := c.Health().State(api.HealthAny, nil)
	must(t, err)
	if len(all) != 2 {
		t.Fatalf("state any: %+v", all)
	}
}
