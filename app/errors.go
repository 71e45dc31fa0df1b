package app

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/hindsight-sre/hindsight/api"
)

// jsonErrors answers requests that match no route with a JSON error, as
// every other error is: 404 for an unknown path, 405 (with Allow) for a
// known path and the wrong method.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			api.Error(w, rec.status, fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.ReplaceAll(allow, ", ", " or ")))
		case http.StatusNotFound:
			api.Error(w, rec.status, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
		default: // a redirect to the cleaned path, say
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
		}
	})
}

type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.status = code }
