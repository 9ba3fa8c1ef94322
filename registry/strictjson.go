package registry

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxJSONDepth bounds the nesting of a request body: npm's documents nest a
// handful of levels (package.json "exports" maybe a dozen), and a bound
// keeps hostile input ("[[[[…") cheap to refuse.
const MaxJSONDepth = 100

// decodeStrict reads one JSON object from r into v after CheckJSON accepted
// it, and decodes it with json v2, which matches struct fields by their
// exact name. encoding/json would take the last of duplicate keys, fill
// "versions" from "Versions" or "VERSIONS", and replace invalid UTF-8 and
// lone surrogates with U+FFFD: what one check saw would not be what the
// next one reads. A key that differs from a field only in case is an
// unknown key here, ignored like every other unknown key of the body.
// The body is read whole first, which costs no more memory than a
// decoder (it buffers the value too).
func decodeStrict(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return decodeError(err)
	}
	if err := CheckJSON(data); err != nil {
		return err
	}
	if err := jsonv2.Unmarshal(data, v); err != nil {
		return decodeError(err)
	}
	return nil
}

// CheckJSON accepts exactly one JSON object (RFC 8259, surrounding
// whitespace allowed) that nests at most MaxJSONDepth levels, is valid
// UTF-8 with no lone surrogate escape ("\ud800"), and has no duplicate
// keys in any object (compared after unescaping: "a" and "\u0061" are the
// same key). Every refusal is a KindInvalid error.
func CheckJSON(data []byte) error {
	if !utf8.Valid(data) {
		return E(KindInvalid, "the request body is not valid UTF-8 (byte %d)", firstInvalidUTF8(data))
	}
	switch t := bytes.TrimLeft(data, " \t\r\n"); {
	case len(t) == 0:
		return E(KindInvalid, "the request body is empty")
	case t[0] != '{':
		return E(KindInvalid, "the request body must be a JSON object")
	}
	// jsontext refuses duplicate names, invalid UTF-8 and lone surrogates
	// by default; from a bytes.Buffer it reads without a copy.
	dec := jsontext.NewDecoder(bytes.NewBuffer(data))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return jsonSyntaxError(err)
		}
		if k := tok.Kind(); (k == '{' || k == '[') && dec.StackDepth() > MaxJSONDepth {
			return E(KindInvalid, "the request body nests deeper than %d levels", MaxJSONDepth)
		}
		if dec.StackDepth() == 0 {
			break
		}
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return E(KindInvalid, "the request body has data after the JSON document")
	}
	return nil
}

// jsonSyntaxError words a jsontext error for the client.
func jsonSyntaxError(err error) error {
	var serr *jsontext.SyntacticError
	if errors.As(err, &serr) && serr.Err == jsontext.ErrDuplicateName {
		return E(KindInvalid, "the request body has a duplicate key %q", serr.JSONPointer.LastToken())
	}
	return E(KindInvalid, "the request body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "jsontext: "))
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}
