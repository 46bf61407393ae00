package goapi

import (
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
)

// TestConnectCA: the harness's wait for an active CA root passes (its default configuration
// enables Connect), and the Go client reads roots, a leaf and the CA configuration, then
// rotates the root with a new configuration.
func TestConnectCA(t *testing.T) {
	client, srv := newServer(t)
	srv.WaitForActiveCARoot(t)

	roots, meta, err := client.Agent().ConnectCARoots(nil)
	must(t, err)
	if meta.LastIndex == 0 || len(roots.Roots) != 1 || roots.Roots[0].ID != roots.ActiveRootID || !roots.Roots[0].Active {
		t.Fatalf("agent roots: %+v (index %d)", roots, meta.LastIndex)
	}
	if !strings.HasSuffix(roots.TrustDomain, ".consul") || !strings.HasPrefix(roots.Roots[0].RootCertPEM, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("trust domain %q, root %q", roots.TrustDomain, roots.Roots[0].RootCertPEM)
	}
	same, _, err := client.Connect().CARoots(nil)
	must(t, err)
	if same.ActiveRootID != roots.ActiveRootID {
		t.Fatalf("connect roots %q, agent roots %q", same.ActiveRootID, roots.ActiveRootID)
	}

	leaf, _, err := client.Agent().ConnectCALeaf("web", nil)
	must(t, err)
	if leaf.Service != "web" || !strings.HasSuffix(leaf.ServiceURI, "/dc/dc1/svc/web") || leaf.PrivateKeyPEM == "" || !leaf.ValidBefore.After(leaf.ValidAfter) {
		t.Fatalf("leaf: %+v", leaf)
	}

	conf, _, err := client.Connect().CAGetConfig(nil)
	must(t, err)
	if conf.Provider != "consul" || conf.Config["LeafCertTTL"] != "72h" {
		t.Fatalf("CA configuration: %+v", conf)
	}
	_, err = client.Connect().CASetConfig(&api.CAConfig{Provider: "consul", Config: map[string]interface{}{"LeafCertTTL": "24h"}}, nil)
	must(t, err)
	rotated, _, err := client.Agent().ConnectCARoots(nil)
	must(t, err)
	if len(rotated.Roots) != 2 || rotated.ActiveRootID == roots.ActiveRootID {
		t.Fatalf("after a new configuration: %+v", rotated)
	}
	_, err = client.Connect().CASetConfig(&api.CAConfig{Provider: "vault"}, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown CA provider") {
		t.Fatalf("an unknown provider: %v", err)
	}
}
