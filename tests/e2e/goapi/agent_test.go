package goapi

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/testutil/retry"
)

func TestAgentSelfAndMembers(t *testing.T) {
	c, srv := newServer(t)
	self, err := c.Agent().Self()
	must(t, err)
	config := self["Config"]
	if config["NodeName"] != srv.Config.NodeName || config["NodeID"] != srv.Config.NodeID ||
		config["Datacenter"] != "dc1" || config["Server"] != true {
		t.Fatalf("self Config: %v", config)
	}
	name, err := c.Agent().NodeName()
	must(t, err)
	if name != srv.Config.NodeName {
		t.Fatalf("node name %q", name)
	}
	members, err := c.Agent().Members(false)
	must(t, err)
	const serfAlive = 1 // serf.StatusAlive, which the API client reports as a plain int
	if len(members) != 1 || members[0].Name != srv.Config.NodeName || members[0].Status != serfAlive {
		t.Fatalf("members: %+v", members)
	}
	leader, err := c.Status().Leader()
	must(t, err)
	if leader == "" {
		t.Fatal("no leader")
	}
	// The harness finds the server among the Raft voters by the node ID it pinned.
	srv.WaitForVoting(t)
}

func TestAgentServiceRegister(t *testing.T) {
	c, _ := newServer(t)
	agent := c.Agent()
	must(t, agent.ServiceRegister(&api.AgentServiceRegistration{
		ID: "api-1", Name: "api", Port: 9000, Address: "127.0.0.1",
		Tags: []string{"blue"}, Meta: map[string]string{"owner": "team-a"},
		Checks: api.AgentServiceChecks{{TTL: "30s"}, {TTL: "60s", Name: "second"}},
	}))

	services, err := agent.Services()
	must(t, err)
	svc := services["api-1"]
	if svc == nil || svc.Service != "api" || svc.Port != 9000 || svc.Meta["owner"] != "team-a" || svc.Tags[0] != "blue" {
		t.Fatalf("agent services: %+v", services)
	}
	one, _, err := agent.Service("api-1", nil)
	must(t, err)
	if one.ID != "api-1" || one.Address != "127.0.0.1" {
		t.Fatalf("agent service: %+v", one)
	}
	checks, err := agent.Checks()
	must(t, err)
	for _, id := range []string{"service:api-1:1", "service:api-1:2"} {
		if checks[id] == nil || checks[id].ServiceID != "api-1" || checks[id].Status != api.HealthCritical {
			t.Fatalf("check %s: %+v", id, checks[id])
		}
	}
	status, info, err := agent.AgentHealthServiceByID("api-1")
	if status != api.HealthCritical || info == nil || info.Service.ID != "api-1" {
		t.Fatalf("health by id: %q %+v %v", status, info, err)
	}
	// The catalog reflects the registration (anti-entropy runs on registration).
	eventually(t, func(r *retry.R) {
		instances, _, err := c.Catalog().Service("api", "blue", nil)
		if err != nil || len(instances) != 1 {
			r.Fatalf("catalog: %+v, %v", instances, err)
		}
	})

	must(t, agent.ServiceDeregister("api-1"))
	services, err = agent.Services()
	must(t, err)
	if services["api-1"] != nil {
		t.Fatalf("service still registered: %+v", services)
	}
	checks, err = agent.Checks()
	must(t, err)
	if checks["service:api-1:1"] != nil {
		t.Fatalf("its checks are still registered: %+v", checks)
	}
}

func TestAgentCheckTTL(t *testing.T) {
	c, _ := newServer(t)
	agent := c.Agent()
	must(t, agent.CheckRegister(&api.AgentCheckRegistration{
		ID: "heartbeat", Name: "heartbeat", Notes: "set by a cron job",
		AgentServiceCheck: api.AgentServiceCheck{TTL: "30s", Status: api.HealthWarning},
	}))
	status := func() *api.AgentCheck {
		checks, err := agent.Checks()
		must(t, err)
		if checks["heartbeat"] == nil {
			t.Fatalf("check missing: %+v", checks)
		}
		return checks["heartbeat"]
	}
	if got := status(); got.Status != api.HealthWarning || got.Notes != "set by a cron job" {
		t.Fatalf("initial: %+v", got)
	}
	for _, step := range []struct {
		update func() error
		status string
		output string
	}{
		{func() error { return agent.PassTTL("heartbeat", "fine") }, api.HealthPassing, "fine"},
		{func() error { return agent.WarnTTL("heartbeat", "slow") }, api.HealthWarning, "slow"},
		{func() error { return agent.FailTTL("heartbeat", "dead") }, api.HealthCritical, "dead"},
		{func() error { return agent.UpdateTTL("heartbeat", "back", api.HealthPassing) }, api.HealthPassing, "back"},
	} {
		must(t, step.update())
		if got := status(); got.Status != step.status || got.Output != step.output {
			t.Fatalf("want %s %q, got %+v", step.status, step.output, got)
		}
	}
	if err := agent.PassTTL("no-such-check", ""); err == nil {
		t.Fatal("passing an unknown check succeeded")
	}
	must(t, agent.CheckDeregister("heartbeat"))
	checks, err := agent.Checks()
	must(t, err)
	if checks["heartbeat"] != nil {
		t.Fatal("check still registered")
	}
}

func TestAgentCheckTTLExpires(t *testing.T) {
	c, _ := newServer(t)
	agent := c.Agent()
	must(t, agent.CheckRegister(&api.AgentCheckRegistration{
		ID: "short", Name: "short", AgentServiceCheck: api.AgentServiceCheck{TTL: "1s"},
	}))
	must(t, agent.PassTTL("short", "alive"))
	start := time.Now()
	eventually(t, func(r *retry.R) {
		checks, err := agent.Checks()
		if err != nil || checks["short"] == nil || checks["short"].Status != api.HealthCritical {
			r.Fatalf("not critical yet: %+v, %v", checks["short"], err)
		}
	})
	if time.Since(start) < time.Second {
		t.Fatal("the TTL check went critical before its TTL elapsed")
	}
}
