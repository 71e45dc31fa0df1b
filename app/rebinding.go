package app

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/hindsight-sre/hindsight/api"
)

// loopbackOnly answers only requests addressed to a loopback name: with
// an endpoint open without credentials Hindsight listens on loopback, and
// a web page the on-call engineer opens could otherwise rebind its own
// domain name to 127.0.0.1 (DNS rebinding) and read incidents or write
// through the API from their browser. A browser sends the name it
// resolved in Host; curl, Prometheus and Alertmanager on the same
// machine send the loopback address or localhost.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			api.Error(w, http.StatusForbidden, fmt.Sprintf(
				"Host %q is not a loopback name: without auth Hindsight answers only requests addressed to 127.0.0.1, [::1] or localhost (a defence against DNS rebinding); configure auth to serve other names",
				clipHost(r.Host)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true // RFC 6761: browsers resolve these to loopback themselves
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func clipHost(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
