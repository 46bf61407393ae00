package goapi

import (
	"reflect"
	"testing"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/testutil/retry"
)

func TestCatalogRegisterAndRead(t *testing.T) {
	c, srv := newServer(t)
	cat := c.Catalog()

	dcs, err := cat.Datacenters()
	must(t, err)
	if !reflect.DeepEqual(dcs, []string{"dc1"}) {
		t.Fatalf("datacenters: %v", dcs)
	}

	reg := &api.CatalogRegistration{
		Node:     "external-db",
		Address:  "192.0.2.10",
		NodeMeta: map[string]string{"rack": "r1"},
		Service: &api.AgentService{
			ID: "db-1", Service: "db", Tags: []string{"primary"}, Port: 5432,
			Meta: map[string]string{"version": "15"},
		},
		Check: &api.AgentCheck{
			Node: "external-db", CheckID: "db-alive", Name: "db alive",
			Status: api.HealthPassing, ServiceID: "db-1",
		},
	}
	_, err = cat.Register(reg, nil)
	must(t, err)

	nodes, _, err := cat.Nodes(nil)
	must(t, err)
	names := map[string]*api.Node{}
	for _, n := range nodes {
		names[n.Node] = n
	}
	if names[srv.Config.NodeName] == nil || names["external-db"] == nil {
		t.Fatalf("nodes: %v", names)
	}
	if names[srv.Config.NodeName].ID != srv.Config.NodeID {
		t.Fatalf("the agent's node ID %q is not the pinned %q", names[srv.Config.NodeName].ID, srv.Config.NodeID)
	}
	if n := names["external-db"]; n.Address != "192.0.2.10" || n.Meta["rack"] != "r1" || n.Datacenter != "dc1" {
		t.Fatalf("registered node: %+v", n)
	}

	services, _, err := cat.Services(nil)
	must(t, err)
	if !reflect.DeepEqual(services["db"], []string{"primary"}) {
		t.Fatalf("services: %v", services)
	}
	if _, ok := services["consul"]; !ok {
		t.Fatalf("the server's own consul service is missing: %v", services)
	}

	instances, _, err := cat.Service("db", "primary", nil)
	must(t, err)
	if len(instances) != 1 {
		t.Fatalf("service db tag primary: %+v", instances)
	}
	db := instances[0]
	if db.Node != "external-db" || db.Address != "192.0.2.10" || db.ServiceID != "db-1" ||
		db.ServicePort != 5432 || db.ServiceMeta["version"] != "15" || db.NodeMeta["rack"] != "r1" {
		t.Fatalf("catalog service: %+v", db)
	}
	if none, _, err := cat.Service("db", "replica", nil); err != nil || len(none) != 0 {
		t.Fatalf("service db tag replica: %+v, %v", none, err)
	}

	node, _, err := cat.Node("external-db", nil)
	must(t, err)
	if node.Node.Node != "external-db" || node.Services["db-1"] == nil || node.Services["db-1"].Port != 5432 {
		t.Fatalf("catalog node: %+v", node)
	}

	_, err = cat.Deregister(&api.CatalogDeregistration{Node: "external-db", ServiceID: "db-1"}, nil)
	must(t, err)
	if left, _, err := cat.Service("db", "", nil); err != nil || len(left) != 0 {
		t.Fatalf("after deregistering the service: %+v, %v", left, err)
	}
	_, err = cat.Deregister(&api.CatalogDeregistration{Node: "external-db"}, nil)
	must(t, err)
	if gone, _, err := cat.Node("external-db", nil); err != nil || gone != nil {
		t.Fatalf("after deregistering the node: %+v, %v", gone, err)
	}
}

// TestCatalogReadsAgentServices reads through the catalog what the agent registered and synced.
func TestCatalogReadsAgentServices(t *testing.T) {
	c, srv := newServer(t)
	must(t, c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "cache-1", Name: "cache", Port: 6379, Tags: []string{"primary"},
		Meta: map[string]string{"engine": "redis"},
	}))
	eventually(t, func(r *retry.R) {
		services, _, err := c.Catalog().Services(nil)
		if err != nil || !reflect.DeepEqual(services["cache"], []string{"primary"}) {
			r.Fatalf("services: %v, %v", services, err)
		}
	})
	instances, meta, err := c.Catalog().Service("cache", "primary", nil)
	must(t, err)
	if len(instances) != 1 || instances[0].ServiceID != "cache-1" || instances[0].ServicePort != 6379 ||
		instances[0].Node != srv.Config.NodeName || instances[0].ServiceMeta["engine"] != "redis" {
		t.Fatalf("catalog service: %+v", instances)
	}
	if meta.LastIndex == 0 || !meta.KnownLeader {
		t.Fatalf("query meta: %+v", meta)
	}
	node, _, err := c.Catalog().Node(srv.Config.NodeName, nil)
	must(t, err)
	if node.Node.ID != srv.Config.NodeID || node.Services["cache-1"] == nil {
		t.Fatalf("catalog node: %+v", node)
	}
	list, _, err := c.Catalog().NodeServiceList(srv.Config.NodeName, nil)
	must(t, err)
	found := false
	for _, svc := range list.Services {
		found = found || svc.ID == "cache-1"
	}
	if !found {
		t.Fatalf("node service list: %+v", list.Services)
	}
}
