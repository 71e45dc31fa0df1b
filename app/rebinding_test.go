package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func withHost(t *testing.T, method, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{"state":"draft"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Without auth, Hindsight answers only requests addressed to a loopback
// name: a page that rebinds its own name to 127.0.0.1 gets nothing.
func TestDNSRebindingIsRefusedWithoutAuth(t *testing.T) {
	a := boot(t, t.TempDir(), "")
	base := "http://" + a.Addr()
	_, port, _ := strings.Cut(a.Addr(), ":")
	for _, tc := range []struct {
		method, path, host string
		want               int
	}{
		{"GET", "/api/v1/incidents", "rebind.attacker.example:" + port, http.StatusForbidden},
		{"PUT", "/api/v1/incidents/x/state", "rebind.attacker.example:" + port, http.StatusForbidden},
		{"GET", "/", "rebind.attacker.example", http.StatusForbidden},
		{"GET", "/api/v1/incidents", "127.0.0.1:" + port, http.StatusOK},
		{"GET", "/api/v1/incidents", "localhost:" + port, http.StatusOK},
		{"GET", "/api/v1/incidents", "[::1]:" + port, http.StatusOK},
		{"GET", "/healthz", "hindsight.localhost", http.StatusOK},
	} {
		got, body := withHost(t, tc.method, base+tc.path, tc.host)
		if got != tc.want {
			t.Errorf("%s %s with Host %s = %d %s, want %d", tc.method, tc.path, tc.host, got, body, tc.want)
		}
		if got == http.StatusForbidden && !strings.Contains(body, "DNS rebinding") {
			t.Errorf("refusal says %s; want it to say why", body)
		}
	}

	// With credentials on every endpoint, any name will do: the
	// credentials are the defence.
	b := boot(t, t.TempDir(), `
auth:
  alertmanager: {bearer_token: t1}
  deploy: {bearer_token: t2}
  api: {bearer_token: t3}
`)
	req, _ := http.NewRequest("GET", "http://"+b.Addr()+"/api/v1/incidents", nil)
	req.Host = "hindsight.example.com"
	req.Header.Set("Authorization", "Bearer t3")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("with auth, Host hindsight.example.com = %d, want 200", res.StatusCode)
	}
}
