package natsbus

import "testing"

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"2.10.0", true}, {"2.10.22", true}, {"2.15.2", true}, {"3.0.0", true}, {"v2.11.0-beta.1", true},
		{"2.9.25", false}, {"1.4.1", false}, {"2.9", false}, {"garbage", false},
	} {
		t.Run(tc.v, func(t *testing.T) {
			err := checkVersion(tc.v)
			if (err == nil) != tc.ok {
				t.Fatalf("checkVersion(%q) = %v, want ok=%v", tc.v, err, tc.ok)
			}
		})
	}
}
