package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	capture, err := os.ReadFile("../../ingest/testdata/alertmanager-0.25/02-second-alert-joins.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
		wantBody                 string
	}{
		{"real capture", http.MethodPost, "/hooks/alertmanager", string(capture), http.StatusOK, `{"accepted":2}`},
		{"not JSON", http.MethodPost, "/hooks/alertmanager", "{", http.StatusBadRequest, "not an Alertmanager"},
		{"wrong version", http.MethodPost, "/hooks/alertmanager", `{"version":"3","alerts":[{}]}`, http.StatusBadRequest, "version 4"},
		{"no alerts", http.MethodPost, "/hooks/alertmanager", `{"version":"4","alerts":[]}`, http.StatusBadRequest, "with alerts"},
		{"health", http.MethodGet, "/healthz", "", http.StatusOK, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			handler().ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body, tc.want, tc.wantBody)
			}
		})
	}
}
