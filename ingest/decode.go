package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/hindsight-sre/hindsight/internal/jsonwire"
)

// Reasons label hindsight_events_rejected_total. They are a closed set so
// that the metric's cardinality stays bounded.
const (
	reasonBadJSON          = "bad_json"
	reasonBadEncoding      = "bad_encoding"
	reasonMissingField     = "missing_field"
	reasonBadValue         = "bad_value"
	reasonTooLarge         = "too_large"
	reasonUnauthorized     = "unauthorized"
	reasonUnsupportedMedia = "unsupported_media_type"
	reasonUnknownField     = "unknown_field"
	reasonUnusableAlert    = "unusable_alert"
	reasonNotFound         = "not_found"
	reasonReadError        = "read_error"
)

// requestError is the caller's mistake: it becomes a 4xx with a JSON body
// saying what is wrong, and nothing is published.
type requestError struct {
	status   int
	reason   string // one of the reason constants
	msg      string
	rejected []Rejection // per-alert reasons when every alert was unusable
}

func (e *requestError) Error() string { return e.msg }

func badRequest(reason, format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, reason: reason, msg: fmt.Sprintf(format, args...)}
}

// checkContentType accepts a missing Content-Type (curl -d sends a form
// type, but many scripts send none) and application/json in UTF-8.
func checkContentType(h http.Header) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		return nil
	}
	media, params, err := mime.ParseMediaType(ct)
	if err != nil || media != "application/json" {
		return &requestError{
			status: http.StatusUnsupportedMediaType,
			reason: reasonUnsupportedMedia,
			msg:    fmt.Sprintf("Content-Type %q is not supported: send application/json", ct),
		}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &requestError{
			status: http.StatusUnsupportedMediaType,
			reason: reasonUnsupportedMedia,
			msg:    fmt.Sprintf("charset %q is not supported: send UTF-8", cs),
		}
	}
	return nil
}

// readBody reads at most limit bytes of r's body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, &requestError{
				status: http.StatusRequestEntityTooLarge,
				reason: reasonTooLarge,
				msg:    fmt.Sprintf("body exceeds the limit of %d bytes", mbe.Limit),
			}
		}
		return nil, badRequest(reasonReadError, "read body: %v", err)
	}
	return body, nil
}

// checkUTF8 rejects invalid UTF-8, which encoding/json would otherwise
// silently replace with U+FFFD and so alter labels, and with them IDs.
func checkUTF8(body []byte) error {
	if utf8.Valid(body) {
		return nil
	}
	off := 0
	for off < len(body) {
		r, size := utf8.DecodeRune(body[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	return badRequest(reasonBadEncoding, "body is not valid UTF-8 (first bad byte at offset %d)", off)
}

// decodeObject decodes exactly one JSON object into v and refuses anything
// after it. Strict also refuses unknown fields, so that a typo in a field
// name is an error rather than a silently dropped value; Alertmanager's
// payload is not strict because new versions add fields.
func decodeObject(body []byte, v any, strict bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest(reasonBadJSON, "body is empty: want a JSON object")
	}
	if !strict && jsonwire.Decoded(body, v) {
		return nil // the fast path; encoding/json below says what is wrong
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest(reasonBadJSON, "malformed JSON: unexpected data after the object at offset %d", dec.InputOffset())
	}
	return nil
}

// jsonError turns an encoding/json error into a message that says where
// the problem is.
func jsonError(err error) *requestError {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return badRequest(reasonBadJSON, "body is empty: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest(reasonBadJSON, "malformed JSON: body ends before the object does")
	case errors.As(err, &syn):
		return badRequest(reasonBadJSON, "malformed JSON at offset %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest(reasonBadJSON, "body is a JSON %s: want an object", typ.Value)
		}
		// encoding/json names embedded structs in the path; amPayload
		// embeds template.Data, whose fields the sender sees at the top.
		field := strings.TrimPrefix(typ.Field, "Data.")
		return badRequest(reasonBadValue, "field %q: got JSON %s, want %s (offset %d)", field, typ.Value, jsonKind(typ.Type), typ.Offset)
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return badRequest(reasonUnknownField, "unknown field %s", field)
	}
	return badRequest(reasonBadJSON, "malformed JSON: %v", err)
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return t.String()
}
