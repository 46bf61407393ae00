package goapi

import (
	"testing"
	"time"

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

func TestUseCache(t *testing.T) {
	c, _ := newServer(t)
	must(t, c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "cached-1", Name: "cached", Port: 8080}))
	cached := &api.QueryOptions{UseCache: true}
	_, first, err := c.Health().Service("cached", "", false, cached)
	must(t, err)
	_, second, err := c.Health().Service("cached", "", false, cached)
	must(t, err)
	if first.CacheHit || !second.CacheHit || second.CacheAge != 0 {
		t.Fatalf("background-refresh reads: first %+v, second %+v", first, second)
	}
	if _, plain, err := c.Health().Service("cached", "", false, nil); err != nil || plain.CacheHit {
		t.Fatalf("a read without UseCache: %+v, %v", plain, err)
	}

	_, _, err = c.PreparedQuery().Create(&api.PreparedQueryDefinition{
		Name: "cached", Service: api.ServiceQuery{Service: "cached"},
	}, nil)
	must(t, err)
	simple := &api.QueryOptions{UseCache: true, MaxAge: time.Hour, StaleIfError: time.Hour}
	_, miss, err := c.PreparedQuery().Execute("cached", simple)
	must(t, err)
	answer, hit, err := c.PreparedQuery().Execute("cached", simple)
	must(t, err)
	if miss.CacheHit || !hit.CacheHit || len(answer.Nodes) != 1 {
		t.Fatalf("simple cached execution: miss %+v, hit %+v, answer %+v", miss, hit, answer)
	}
}
