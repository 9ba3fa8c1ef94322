package registry

import (
	"strings"
	"testing"
	"time"
)

func TestCheckJSON(t *testing.T) {
	tests := []struct {
		name, body string
		msg        string // "" : accepted; else a substring of the refusal
	}{
		{"object", `{"a":1,"b":[true,false,null,"x",-1.5e+3,{}],"c":{"d":"\u00e9\ud83d\ude00"}}`, ""},
		{"surrounding space", " \n{\"a\":1}\t\r\n", ""},
		{"same key in different objects", `{"a":{"k":1},"b":{"k":2}}`, ""},
		{"case differs in a map", `{"versions":{"1.0.0":{"scripts":{"Build":"a","build":"b"}}}}`, ""},
		{"lone surrogate escape", `{"a":"\ud800"}`, ""},
		{"empty", ``, "empty"},
		{"array", `[1]`, "must be a JSON object"},
		{"trailing brace", `{"a":1}}`, "data after"},
		{"trailing bracket", `{"a":1}]`, "data after"},
		{"second document", `{"a":1}{"b":2}`, "data after"},
		{"duplicate top-level key", `{"name":"a","name":"b"}`, "duplicate key"},
		{"duplicate top-level key, case folded", `{"_attachments":{},"_ATTACHMENTS":{}}`, "duplicate key"},
		{"duplicate top-level key, Kelvin sign folds to k", `{"k":1,"\u212a":2}`, "duplicate key"},
		{"duplicate key, escaped", `{"name":"a","n\u0061me":"b"}`, "duplicate key"},
		{"duplicate version", `{"versions":{"1.0.0":{},"1.0.0":{}}}`, "duplicate key"},
		{"duplicate attachment", `{"_attachments":{"a-1.0.0.tgz":{},"a-1.0.0.tgz":{}}}`, "duplicate key"},
		{"duplicate attachment field, case folded", `{"_attachments":{"a-1.0.0.tgz":{"data":"AA==","DATA":"AQ=="}}}`, "duplicate key"},
		{"duplicate maintainer field", `{"maintainers":[{"name":"a","Name":"b"}]}`, "duplicate key"},
		{"duplicate dist-tag", `{"dist-tags":{"latest":"1.0.0","latest":"2.0.0"}}`, "duplicate key"},
		{"duplicate manifest key", `{"versions":{"1.0.0":{"dist":{},"dist":{}}}}`, "duplicate key"},
		{"too deep", `{"a":` + strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth) + `}`, "nests deeper"},
		{"just deep enough", `{"a":` + strings.Repeat("[", MaxJSONDepth-1) + strings.Repeat("]", MaxJSONDepth-1) + `}`, ""},
		{"invalid UTF-8", "{\"name\":\"fo\xffo\"}", "not valid UTF-8"},
		{"invalid UTF-8 in a key", "{\"\xc3\":1}", "not valid UTF-8"},
		{"control character", "{\"a\":\"x\ny\"}", "control character"},
		{"bad escape", `{"a":"\x"}`, "invalid escape"},
		{"bad number", `{"a":01}`, "expected"},
		{"bad literal", `{"a":nul}`, "unexpected character"},
		{"unterminated", `{"a":"b`, "unterminated"},
		{"missing colon", `{"a" 1}`, "expected ':'"},
		{"trailing comma", `{"a":1,}`, "expected a key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckJSON([]byte(tc.body))
			switch {
			case tc.msg == "" && err != nil:
				t.Fatalf("CheckJSON refused: %v", err)
			case tc.msg != "" && err == nil:
				t.Fatalf("CheckJSON accepted %q", tc.body)
			case tc.msg != "" && (!IsKind(err, KindInvalid) || !strings.Contains(err.Error(), tc.msg)):
				t.Fatalf("CheckJSON err = %v, want KindInvalid containing %q", err, tc.msg)
			}
		})
	}
}

// 100k '[' must be refused quickly, without deep recursion.
func TestCheckJSONHugeNesting(t *testing.T) {
	body := `{"a":` + strings.Repeat("[", 100_000)
	start := time.Now()
	_, err := DecodeUpdateBody(strings.NewReader(body))
	if !IsKind(err, KindInvalid) || !strings.Contains(err.Error(), "nests deeper") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// The smuggling the duplicate check exists for: a second _attachments
// object would replace the first after PreparePublish-like checks on a
// different parser's view.
func TestDecodeUpdateBodyRefusesDuplicates(t *testing.T) {
	for _, body := range []string{
		`{"name":"foo","_attachments":{"foo-1.0.0.tgz":{"data":"AA=="}},"_attachments":{"foo-1.0.0.tgz":{"data":"AQ=="}}}`,
		`{"name":"foo","versions":{"1.0.0":{"name":"foo"}},"Versions":{"1.0.0":{"name":"bar"}}}`,
		`{"name":"foo","name":"bar"}`,
	} {
		if _, err := DecodeUpdateBody(strings.NewReader(body)); !IsKind(err, KindInvalid) || !strings.Contains(err.Error(), "duplicate key") {
			t.Errorf("DecodeUpdateBody(%s) err = %v", body, err)
		}
		if _, err := DecodePublishBody(strings.NewReader(body)); !IsKind(err, KindInvalid) {
			t.Errorf("DecodePublishBody(%s) err = %v", body, err)
		}
	}
}

func TestDecodeUpdateBodyRefusesTrailingBracket(t *testing.T) {
	for _, body := range []string{`{"name":"foo"}}`, `{"name":"foo"}]`} {
		if _, err := DecodeUpdateBody(strings.NewReader(body)); !IsKind(err, KindInvalid) {
			t.Errorf("DecodeUpdateBody(%q) err = %v, want KindInvalid", body, err)
		}
	}
}

func TestDecodeUpdateBodyTooLarge(t *testing.T) {
	if _, err := DecodeUpdateBody(errReader{}); !IsKind(err, KindTooLarge) {
		t.Errorf("err = %v, want KindTooLarge", err)
	}
}
