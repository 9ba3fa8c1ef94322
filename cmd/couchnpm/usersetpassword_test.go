package main

import (
	"io"
	"strings"
	"testing"

	"github.com/couchnpm/couchnpm/registry"
)

func TestPasswordSource(t *testing.T) {
	tests := []struct {
		name      string
		stdin     string
		terminal  bool
		typed     []string // lines typed on the terminal
		fromStdin bool
		want      string
		wantErr   string
	}{
		{name: "stdin, first line only", stdin: "Sturdy-pw-42x\nsecond line\n", fromStdin: true, want: "Sturdy-pw-42x"},
		{name: "stdin, CRLF", stdin: "Sturdy-pw-42x\r\n", fromStdin: true, want: "Sturdy-pw-42x"},
		{name: "stdin, no newline", stdin: "Sturdy-pw-42x", fromStdin: true, want: "Sturdy-pw-42x"},
		{name: "stdin, empty", stdin: "", fromStdin: true, wantErr: "no password on stdin"},
		{name: "a pipe without --password-stdin is refused", stdin: "Sturdy-pw-42x\n", wantErr: "--password-stdin"},
		{name: "terminal, typed twice", terminal: true, typed: []string{"Sturdy-pw-42x", "Sturdy-pw-42x"}, want: "Sturdy-pw-42x"},
		{name: "terminal, typed differently", terminal: true, typed: []string{"Sturdy-pw-42x", "Sturdy-pw-43x"}, wantErr: "differ"},
		{name: "terminal, nothing typed", terminal: true, typed: []string{"", ""}, wantErr: "no password"},
		{name: "terminal closed", terminal: true, wantErr: "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typed := tc.typed
			var prompt strings.Builder
			src := passwordSource{
				stdin: strings.NewReader(tc.stdin), terminal: tc.terminal, prompt: &prompt, fromStdin: tc.fromStdin,
				readHidden: func() ([]byte, error) {
					if len(typed) == 0 {
						return nil, io.EOF
					}
					line := typed[0]
					typed = typed[1:]
					return []byte(line), nil
				},
			}
			got, err := src.read()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("read = %q, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("read = %q, %v; want %q", got, err, tc.want)
			}
			if strings.Contains(prompt.String(), tc.want) {
				t.Errorf("the password was echoed: %q", prompt.String())
			}
		})
	}
}

func TestSetPasswordReport(t *testing.T) {
	tests := []struct {
		name   string
		res    registry.PasswordReset
		revoke bool
		want   []string
	}{
		{"imported hash dropped", registry.PasswordReset{DroppedImportedHash: true, RevokedSessions: 2}, false,
			[]string{"set the password of alice", "dropped the password imported", "ended 2 web sessions", "npm tokens stay valid (--revoke-tokens"}},
		{"tokens revoked", registry.PasswordReset{RevokedTokens: 3}, true,
			[]string{"ended 0 web sessions", "revoked 3 npm tokens"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := setPasswordReport("alice", tc.res, tc.revoke)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("%q lacks %q", out, w)
				}
			}
			if !tc.res.DroppedImportedHash && strings.Contains(out, "imported") {
				t.Errorf("%q mentions an imported password there was none of", out)
			}
		})
	}
}
