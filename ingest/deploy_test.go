package ingest_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

func TestDeploy(t *testing.T) {
	deployTime := time.Date(2026, 11, 22, 3, 55, 0, 0, time.UTC)
	tests := []struct {
		name string
		body string
		want hindsight.Event
	}{
		{
			name: "every field",
			body: `{"id":"gh-run-812","service":"checkout","environment":"prod","version":"v2.3.1","status":"succeeded",
				"time":"2026-11-22T04:55:00+01:00","actor":"alice","commit":"9f1c2ab","url":"https://ci.example/runs/812","description":"raise pool size"}`,
			want: hindsight.Event{
				ID:         hindsight.DeployEventID(hindsight.DeployDetails{ID: "gh-run-812", Environment: "prod", Status: "succeeded"}, "checkout", time.Time{}),
				Kind:       hindsight.KindDeploySucceeded,
				Source:     hindsight.SourceDeploy,
				Time:       deployTime,
				ReceivedAt: receivedAt,
				Service:    "checkout",
				Labels:     map[string]string{"service": "checkout", "environment": "prod"},
				Summary:    "Deploy of checkout v2.3.1 to prod succeeded (by alice)",
				Deploy: &hindsight.DeployDetails{
					ID: "gh-run-812", Environment: "prod", Version: "v2.3.1", Status: "succeeded",
					Actor: "alice", Commit: "9f1c2ab", URL: "https://ci.example/runs/812", Description: "raise pool size",
				},
			},
		},
		{
			name: "only the required fields: received time, no environment label",
			body: `{"service":" checkout ","status":"rolled_back"}`,
			want: hindsight.Event{
				ID:         hindsight.DeployEventID(hindsight.DeployDetails{Status: "rolled_back"}, "checkout", receivedAt),
				Kind:       hindsight.KindDeployRolledBack,
				Source:     hindsight.SourceDeploy,
				Time:       receivedAt,
				ReceivedAt: receivedAt,
				Service:    "checkout",
				Labels:     map[string]string{"service": "checkout"},
				Summary:    "Deploy of checkout rolled back",
				Deploy:     &hindsight.DeployDetails{Status: "rolled_back"},
			},
		},
		{
			name: "no ID: derived from service, version, status and time",
			body: `{"service":"checkout","version":"v2.3.2","environment":"staging","status":"failed","time":"2026-11-22T03:55:00Z"}`,
			want: hindsight.Event{
				ID:         hindsight.DeployEventID(hindsight.DeployDetails{Environment: "staging", Version: "v2.3.2", Status: "failed"}, "checkout", deployTime),
				Kind:       hindsight.KindDeployFailed,
				Source:     hindsight.SourceDeploy,
				Time:       deployTime,
				ReceivedAt: receivedAt,
				Service:    "checkout",
				Labels:     map[string]string{"service": "checkout", "environment": "staging"},
				Summary:    "Deploy of checkout v2.3.2 to staging failed",
				Deploy:     &hindsight.DeployDetails{Environment: "staging", Version: "v2.3.2", Status: "failed"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{})
			r := post(t, srv.URL+deployPath, []byte(tc.body), nil)
			if r.status != 200 {
				t.Fatalf("status %d (%s), want 200", r.status, r.raw)
			}
			if r.ok.Accepted != 1 || len(r.ok.Events) != 1 || r.ok.Events[0] != tc.want.ID {
				t.Errorf("answer %+v, want one event %s", r.ok, tc.want.ID)
			}
			got := pub.published()
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Errorf("published\n%+v\nwant\n%+v", got, tc.want)
			}
			if len(got) == 1 && (got[0].Time.Location() != time.UTC || got[0].ReceivedAt.Location() != time.UTC) {
				t.Errorf("times in %v and %v, want UTC", got[0].Time.Location(), got[0].ReceivedAt.Location())
			}
		})
	}
}

// TestDeployRedelivery checks that a pipeline's retry of the same deploy
// lands on the same ID, which the stream reports as a duplicate.
func TestDeployRedelivery(t *testing.T) {
	srv, pub := newServer(t, ingest.Options{})
	body := []byte(`{"service":"checkout","version":"v2.3.1","status":"started","time":"2026-11-22T03:50:00Z"}`)
	first := post(t, srv.URL+deployPath, body, nil)
	second := post(t, srv.URL+deployPath, body, nil)
	if first.status != 200 || second.status != 200 {
		t.Fatalf("statuses %d, %d, want 200", first.status, second.status)
	}
	if first.ok.Events[0] != second.ok.Events[0] || second.ok.Duplicates != 1 {
		t.Errorf("second answer %+v, want the first's ID %s as a duplicate", second.ok, first.ok.Events[0])
	}
	if n := len(pub.published()); n != 1 {
		t.Errorf("%d events recorded, want 1", n)
	}
}
