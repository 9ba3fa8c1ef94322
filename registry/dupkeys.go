package registry

import (
	"encoding/json"
	"io"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxJSONDepth bounds the nesting of a request body: npm's documents nest a
// handful of levels (package.json "exports" maybe a dozen), and a bound
// keeps hostile input ("[[[[…") cheap to refuse.
const MaxJSONDepth = 100

// decodeStrict reads one JSON object from r into v after CheckJSON accepted
// it. encoding/json alone would take the last of duplicate keys, match
// struct fields case-insensitively, and replace invalid UTF-8 with U+FFFD:
// a second "_attachments" or "versions" (or "_ATTACHMENTS") could then
// slip past a check made on the first. The body is read whole first, which
// costs no more memory than json.Decoder (it buffers the value too).
func decodeStrict(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return decodeError(err)
	}
	if err := CheckJSON(data); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return decodeError(err)
	}
	return nil
}

// CheckJSON accepts exactly one JSON object (RFC 8259, surrounding
// whitespace allowed) that nests at most MaxJSONDepth levels, is valid
// UTF-8, and has no duplicate keys in any object. Keys are compared after
// unescaping ("a" and "\u0061" are the same key); in the objects that
// decode into Go structs (the body itself, each _attachments entry, each
// maintainers entry) also the way encoding/json matches field names,
// case-insensitively. Every refusal is a KindInvalid error.
func CheckJSON(data []byte) error {
	s := &jsonScanner{data: data}
	s.skipSpace()
	if s.i >= len(s.data) || s.data[s.i] != '{' {
		if s.i >= len(s.data) {
			return E(KindInvalid, "the request body is empty")
		}
		return E(KindInvalid, "the request body must be a JSON object")
	}
	if err := s.value(0, ctxTop); err != nil {
		return err
	}
	s.skipSpace()
	if s.i != len(s.data) {
		return E(KindInvalid, "the request body has data after the JSON document")
	}
	return nil
}

// Where an object sits, for the key comparison its decoding needs.
type jsonCtx int

const (
	ctxOther       jsonCtx = iota
	ctxTop                 // the body: a struct
	ctxAttachments         // "_attachments": a map of structs
	ctxMaintainers         // "maintainers": an array of structs
	ctxStruct              // one _attachments or maintainers entry
)

type jsonScanner struct {
	data []byte
	i    int
}

func (s *jsonScanner) fail(what string) error {
	return E(KindInvalid, "the request body is not valid JSON: %s at byte %d", what, s.i)
}

func (s *jsonScanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value; depth counts the arrays and objects around it.
func (s *jsonScanner) value(depth int, ctx jsonCtx) error {
	s.skipSpace()
	if s.i >= len(s.data) {
		return s.fail("unexpected end")
	}
	switch c := s.data[s.i]; {
	case c == '{' || c == '[':
		if depth >= MaxJSONDepth {
			return E(KindInvalid, "the request body nests deeper than %d levels", MaxJSONDepth)
		}
		if c == '{' {
			return s.object(depth+1, ctx)
		}
		return s.array(depth+1, ctx)
	case c == '"':
		_, err := s.str(false)
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(s.data)-s.i >= len(lit) && string(s.data[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return nil
			}
		}
		return s.fail("unexpected character " + strconv.QuoteRune(rune(c)))
	}
}

func (s *jsonScanner) object(depth int, ctx jsonCtx) error {
	s.i++ // '{'
	fold := ctx == ctxTop || ctx == ctxStruct
	seen := map[string]bool{}
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.skipSpace()
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return s.fail("expected a key")
		}
		key, err := s.str(true)
		if err != nil {
			return err
		}
		id := key
		if fold {
			id = foldKey(key)
		}
		if seen[id] {
			return E(KindInvalid, "the request body has a duplicate key %q", key)
		}
		seen[id] = true
		s.skipSpace()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return s.fail("expected ':'")
		}
		s.i++
		child := ctxOther
		switch {
		case ctx == ctxTop && foldKey(key) == foldKey("_attachments"):
			child = ctxAttachments
		case ctx == ctxTop && foldKey(key) == foldKey("maintainers"):
			child = ctxMaintainers
		case ctx == ctxAttachments:
			child = ctxStruct
		}
		if err := s.value(depth, child); err != nil {
			return err
		}
		if done, err := s.separator('}'); done || err != nil {
			return err
		}
	}
}

func (s *jsonScanner) array(depth int, ctx jsonCtx) error {
	s.i++ // '['
	child := ctxOther
	if ctx == ctxMaintainers {
		child = ctxStruct
	}
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(depth, child); err != nil {
			return err
		}
		if done, err := s.separator(']'); done || err != nil {
			return err
		}
	}
}

// separator reads what follows a member of an object or array: a ',' (more
// to come) or the closing byte (done).
func (s *jsonScanner) separator(closing byte) (done bool, err error) {
	s.skipSpace()
	if s.i >= len(s.data) {
		return false, s.fail("unexpected end")
	}
	switch s.data[s.i] {
	case ',':
		s.i++
		return false, nil
	case closing:
		s.i++
		return true, nil
	default:
		return false, s.fail("expected ',' or '" + string(closing) + "'")
	}
}

// str scans a string; with decode set it returns its unescaped value
// (lone surrogates become U+FFFD, as encoding/json does).
func (s *jsonScanner) str(decode bool) (string, error) {
	s.i++ // opening quote
	var out []byte
	start := s.i
	for s.i < len(s.data) {
		for s.i < len(s.data) && plainByte[s.data[s.i]] { // the bulk of a base64 tarball
			s.i++
		}
		if s.i >= len(s.data) {
			break
		}
		c := s.data[s.i]
		switch {
		case c == '"':
			if decode {
				out = append(out, s.data[start:s.i]...)
			}
			s.i++
			return string(out), nil
		case c < 0x20:
			return "", s.fail("control character in a string")
		case c == '\\':
			if decode {
				out = append(out, s.data[start:s.i]...)
			}
			r, err := s.escape()
			if err != nil {
				return "", err
			}
			if decode {
				out = utf8.AppendRune(out, r)
			}
			start = s.i
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.data[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return "", E(KindInvalid, "the request body is not valid UTF-8 (byte %d)", s.i)
			}
			s.i += n
		}
	}
	return "", s.fail("unterminated string")
}

// plainByte marks the bytes a string holds as they are: printable ASCII
// other than '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escape reads one escape sequence (s.i at the backslash).
func (s *jsonScanner) escape() (rune, error) {
	if s.i+1 >= len(s.data) {
		return 0, s.fail("unterminated escape")
	}
	c := s.data[s.i+1]
	s.i += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, ok := s.hex4()
		if !ok {
			return 0, s.fail("invalid \\u escape")
		}
		if utf16.IsSurrogate(r) {
			// A pair only when a low surrogate escape follows.
			if s.i+1 < len(s.data) && s.data[s.i] == '\\' && s.data[s.i+1] == 'u' {
				save := s.i
				s.i += 2
				if r2, ok := s.hex4(); ok {
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						return dec, nil
					}
				}
				s.i = save
			}
			return unicode.ReplacementChar, nil
		}
		return r, nil
	}
	s.i--
	return 0, s.fail("invalid escape")
}

func (s *jsonScanner) hex4() (rune, bool) {
	if len(s.data)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.data[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// number scans RFC 8259's number grammar.
func (s *jsonScanner) number() error {
	digits := func() int {
		n := 0
		for s.i < len(s.data) && s.data[s.i] >= '0' && s.data[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.data[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.data) && s.data[s.i] == '0':
		s.i++
	case digits() == 0:
		return s.fail("invalid number")
	}
	if s.i < len(s.data) && s.data[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.fail("invalid number")
		}
	}
	if s.i < len(s.data) && (s.data[s.i] == 'e' || s.data[s.i] == 'E') {
		s.i++
		if s.i < len(s.data) && (s.data[s.i] == '+' || s.data[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.fail("invalid number")
		}
	}
	return nil
}

// foldKey folds a key the way encoding/json matches struct field names
// (Unicode simple case folding, as bytes.EqualFold): two keys that fold
// alike fill the same field.
func foldKey(k string) string {
	out := make([]rune, 0, len(k))
	for _, r := range k {
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = append(out, r)
	}
	return string(out)
}
