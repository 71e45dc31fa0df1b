package jsonwire

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/prometheus/alertmanager/template"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/internal/eventgen"
)

type envelope struct {
	Events []hindsight.Event `json:"events"`
}

// notification has the shape of ingest's Alertmanager payload: template.Data
// embedded, beside fields of its own and an unexported one.
type notification struct {
	template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts int    `json:"truncatedAlerts"`
	errs            []error
}

// seeds are real documents: generated events, and Alertmanager's own
// notifications from the shared fixtures.
func seeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, e := range eventgen.Events(40, 5) {
		b, err := json.Marshal(&e)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	files, _ := filepath.Glob("../../../shared/fixtures/*/*.json")
	more, _ := filepath.Glob("../../../shared/fixtures/*.json")
	for _, p := range append(files, more...) {
		if b, err := os.ReadFile(p); err == nil {
			out = append(out, b)
		}
	}
	out = append(out, []byte(`{"events":[{"id":"a"},{"id":"b","kind":"alert.firing"}]}`), []byte(`{"id":"\ud800x","labels":null}`), []byte(`[1,2`))
	return out
}

// agree decodes data into new values of v's type both ways and fails if
// the results differ.
func agree[T any](t *testing.T, data []byte) {
	var std, got T
	stdErr := json.Unmarshal(data, &std)
	gotErr := Unmarshal(data, &got)
	if (stdErr == nil) != (gotErr == nil) || (stdErr != nil && stdErr.Error() != gotErr.Error()) {
		t.Fatalf("%T from %q: encoding/json says %v, jsonwire %v", std, data, stdErr, gotErr)
	}
	if stdErr == nil && !reflect.DeepEqual(std, got) {
		a, _ := json.Marshal(std)
		b, _ := json.Marshal(got)
		t.Fatalf("%T from %q decodes apart:\nencoding/json %s\njsonwire      %s", std, data, a, b)
	}
}

func FuzzUnmarshalAgrees(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agree[hindsight.Event](t, data)
		agree[envelope](t, data)
		agree[notification](t, data)
		agree[hindsight.Incident](t, data)
	})
}

func FuzzMarshalAgrees(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e hindsight.Event
		if json.Unmarshal(data, &e) != nil {
			return
		}
		want, wantErr := json.Marshal(&e)
		got, gotErr := Marshal(&e)
		if (wantErr == nil) != (gotErr == nil) || !bytes.Equal(want, got) {
			t.Fatalf("event from %q encodes apart:\nencoding/json %s (%v)\njsonwire      %s (%v)", data, want, wantErr, got, gotErr)
		}
	})
}

func BenchmarkUnmarshal(b *testing.B) {
	raw, err := json.Marshal(envelope{eventgen.Events(250, 50)})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    func([]byte, any) error
	}{{"encoding-json", json.Unmarshal}, {"jsonwire", Unmarshal}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				var e envelope
				if err := c.f(raw, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	evs := eventgen.Events(250, 50)
	for _, c := range []struct {
		name string
		f    func(any) ([]byte, error)
	}{{"encoding-json", json.Marshal}, {"jsonwire", Marshal}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				for i := range evs {
					if _, err := c.f(&evs[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
