// Package jsonwire encodes and decodes the JSON on Hindsight's hot paths
// (Alertmanager's notifications, the events on the stream, the state
// file's values) with github.com/goccy/go-json, and answers exactly as
// encoding/json would.
//
// Why a library: encoding/json was 40% of the CPU of a relaxed ingest
// run and half of a rebuild's (docs/performance.md). goccy/go-json is a
// drop-in replacement, pure Go, with the same struct tags, Marshaler and
// Unmarshaler interfaces and map-key order; on Hindsight's events it
// decodes 4 times and encodes 2.5 times as fast as encoding/json
// (BenchmarkUnmarshal, BenchmarkMarshal in this package). Of the others
// measured side by side, github.com/bytedance/sonic was as fast but
// compiles its codecs at run time with assembly tied to Go's internals,
// and github.com/segmentio/encoding half as fast.
//
// The guarantee: Unmarshal gives what encoding/json gives, or its error,
// for a target that starts at its zero value (every caller's).
// A document go-json refuses (or panics on) is decoded again with
// encoding/json from a zero value, so a disagreement can only ever cost
// time, and every error a sender reads is encoding/json's, word for
// word. FuzzUnmarshalAgrees checks the other direction, that go-json
// never accepts a document differently from encoding/json, on events and
// Alertmanager notifications; FuzzMarshalAgrees that both write the same
// bytes.
package jsonwire

import (
	"encoding/json"
	"errors"
	"reflect"

	gojson "github.com/goccy/go-json"
)

// Marshal returns the JSON encoding of v, as encoding/json.Marshal does
// (an error, for a value encoding/json refuses too, is go-json's words).
func Marshal(v any) (b []byte, err error) {
	defer func() {
		if recover() != nil {
			b, err = json.Marshal(v)
		}
	}()
	return gojson.Marshal(v)
}

// Unmarshal decodes data into v, a non-nil pointer to a zero value, as
// encoding/json.Unmarshal does. (Into a value that already holds data,
// a document go-json refuses is decoded by encoding/json from zero, not
// merged into it.)
func Unmarshal(data []byte, v any) error {
	if Decoded(data, v) {
		return nil
	}
	return json.Unmarshal(data, v)
}

// Decoded decodes data into v, a non-nil pointer, with go-json alone and
// says whether it did. If not, v is left as its zero value, for a caller
// that decodes again with encoding/json to say what is wrong.
func Decoded(data []byte, v any) bool {
	if fast(data, v) == nil {
		return true
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv.Elem().SetZero()
	}
	return false
}

func fast(data []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errPanicked
		}
	}()
	return gojson.Unmarshal(data, v)
}

var errPanicked = errors.New("go-json panicked")
