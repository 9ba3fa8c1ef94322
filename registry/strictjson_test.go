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
		{"keys differing in case are different keys", `{"_attachments":{"a":{"data":"AA==","DATA":"AQ=="}},"_ATTACHMENTS":{},"maintainers":[{"name":"a","Name":"b"}]}`, ""},
		{"Kelvin sign is not k", `{"k":1,"\u212a":2}`, ""},
		{"escaped backslash before u", `{"a":"\\ud800"}`, ""},
		{"lone high surrogate escape", `{"a":"\ud800"}`, "surrogate"},
		{"lone low surrogate escape", `{"a":"\udc00"}`, "surrogate"},
		{"high surrogate before a non-surrogate", `{"a":"\ud800\u0041"}`, "surrogate"},
		{"lone surrogate in a key", `{"\udfff":1}`, "surrogate"},
		{"empty", ``, "empty"},
		{"array", `[1]`, "must be a JSON object"},
		{"trailing brace", `{"a":1}}`, "data after"},
		{"trailing bracket", `{"a":1}]`, "data after"},
		{"second document", `{"a":1}{"b":2}`, "data after"},
		{"duplicate top-level key", `{"name":"a","name":"b"}`, "duplicate key"},
		{"duplicate key, escaped", `{"name":"a","n\u0061me":"b"}`, "duplicate key"},
		{"duplicate version", `{"versions":{"1.0.0":{},"1.0.0":{}}}`, "duplicate key"},
		{"duplicate attachment", `{"_attachments":{"a-1.0.0.tgz":{},"a-1.0.0.tgz":{}}}`, "duplicate key"},
		{"duplicate attachment field", `{"_attachments":{"a-1.0.0.tgz":{"data":"AA==","data":"AQ=="}}}`, "duplicate key"},
		{"duplicate maintainer field", `{"maintainers":[{"name":"a","name":"b"}]}`, "duplicate key"},
		{"duplicate key, deep", `{"a":{"b":[{"c":1,"c":2}]}}`, "duplicate key \"c\""},
		{"duplicate dist-tag", `{"dist-tags":{"latest":"1.0.0","latest":"2.0.0"}}`, "duplicate key"},
		{"duplicate manifest key", `{"versions":{"1.0.0":{"dist":{},"dist":{}}}}`, "duplicate key"},
		{"too deep", `{"a":` + strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth) + `}`, "nests deeper"},
		{"just deep enough", `{"a":` + strings.Repeat("[", MaxJSONDepth-1) + strings.Repeat("]", MaxJSONDepth-1) + `}`, ""},
		{"invalid UTF-8", "{\"name\":\"fo\xffo\"}", "not valid UTF-8"},
		{"invalid UTF-8 in a key", "{\"\xc3\":1}", "not valid UTF-8"},
		{"control character", "{\"a\":\"x\ny\"}", "non-control character"},
		{"bad escape", `{"a":"\x"}`, "invalid escape sequence"},
		{"bad number", `{"a":01}`, "invalid character '1'"},
		{"bad literal", `{"a":nul}`, "literal null"},
		{"unterminated", `{"a":"b`, "unexpected EOF"},
		{"unterminated object", `{"a":1`, "unexpected EOF"},
		{"missing colon", `{"a" 1}`, "expecting ':'"},
		{"trailing comma", `{"a":1,}`, "invalid character ','"},
		{"byte order mark", "\ufeff{}", "must be a JSON object"},
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

// Field names match exactly (json v2): encoding/json would fill Versions
// from "Versions", Maintainers from "MAINTAINERS". Such keys are unknown
// keys, ignored like the body's other unknown keys.
func TestDecodeIsCaseSensitive(t *testing.T) {
	body := `{"name":"foo","versions":{"1.0.0":{"name":"foo"}},"Versions":{"6.6.6":{"name":"bar"}},` +
		`"_attachments":{"foo-1.0.0.tgz":{"data":"AA==","DATA":"AQ==","Length":9}},"_ATTACHMENTS":{"foo-6.6.6.tgz":{"data":"AQ=="}},` +
		`"MAINTAINERS":[{"name":"mallory"}],"Users":{"mallory":true},"NAME":"bar","Dist-Tags":{"latest":"6.6.6"}}`
	b, err := DecodeUpdateBody(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "foo" || len(b.Versions) != 1 || b.Versions["1.0.0"] == nil {
		t.Errorf("name %q, versions %v", b.Name, b.Versions)
	}
	if a := b.Attachments["foo-1.0.0.tgz"]; len(b.Attachments) != 1 || a.Data != "AA==" || a.Length != 0 {
		t.Errorf("attachments %+v", b.Attachments)
	}
	if b.Maintainers != nil || b.Users != nil || b.DistTags != nil {
		t.Errorf("maintainers %v, users %v, dist-tags %v: filled from other-case keys", b.Maintainers, b.Users, b.DistTags)
	}
	// Only other-case keys: nothing to publish.
	b, err = DecodeUpdateBody(strings.NewReader(`{"Name":"foo","Versions":{"1.0.0":{}},"_Attachments":{"foo-1.0.0.tgz":{"data":"AA=="}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "" || b.Versions != nil || b.IsPublish() {
		t.Errorf("decoded %+v", b)
	}
}

// encoding/json turns a lone surrogate escape into U+FFFD; the decoders
// refuse it, so no check sees one string and the store another.
func TestDecodeRefusesLoneSurrogates(t *testing.T) {
	for _, body := range []string{
		`{"name":"foo","readme":"\ud800"}`,
		`{"name":"foo","versions":{"1.0.0":{"description":"x\udc00"}}}`,
		`{"name":"foo","dist-tags":{"\ud83d":"1.0.0"}}`,
	} {
		if _, err := DecodeUpdateBody(strings.NewReader(body)); !IsKind(err, KindInvalid) || !strings.Contains(err.Error(), "surrogate") {
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
