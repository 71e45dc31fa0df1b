// Package e2e proves Hindsight against the real programs its users run:
// Debian's prometheus-alertmanager sends its webhooks to a Hindsight booted
// in-process, and Debian's prometheus evaluates an alerting rule over a
// scraped metric and alerts that Alertmanager. Everything is asserted
// through Hindsight's HTTP API and /metrics, as a user would see it.
//
// The package has only tests; this file exists so that the package builds
// (and `go vet ./...` and `go build ./...` see it) without them.
//
// # What the tests need
//
//   - prometheus-alertmanager (0.25 in Debian 12) on PATH, as
//     prometheus-alertmanager or alertmanager, for TestRealAlertmanager and
//     TestRealPrometheusToAlertmanagerToHindsight;
//   - prometheus (2.42 in Debian 12) on PATH for
//     TestRealPrometheusToAlertmanagerToHindsight.
//
// Install both with
//
//	apt-get install --no-install-recommends prometheus prometheus-alertmanager
//
// Without them the tests skip, except under CI (the CI environment variable
// set), where they fail: CI must install them.
//
// Every program listens on 127.0.0.1 on a free port, keeps its data in the
// test's temporary directory, and runs with clustering and every other
// outbound connection off. Each is stopped by its PID when its test ends
// (and, on Linux, killed if the test binary dies first); its output is kept
// in a file and printed when the test fails. The tests run in parallel and
// take about 15 seconds together; a failing test gives up within about two
// minutes.
package e2e
