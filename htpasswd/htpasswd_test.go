package htpasswd

import (
	"crypto/des"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// With no salt, desEncrypt is plain DES: the standard library agrees.
func TestDESMatchesStandardLibrary(t *testing.T) {
	for _, tc := range []struct{ key, block uint64 }{
		{0x133457799BBCDFF1, 0x0123456789ABCDEF},
		{0, 0},
		{0xFFFFFFFFFFFFFFFF, 0x8000000000000001},
		{0x0E329232EA6D0D73, 0x8787878787878787},
	} {
		var k, in, want [8]byte
		binary.BigEndian.PutUint64(k[:], tc.key)
		binary.BigEndian.PutUint64(in[:], tc.block)
		c, err := des.NewCipher(k[:])
		if err != nil {
			t.Fatal(err)
		}
		c.Encrypt(want[:], in[:])
		ks := desSubkeys(tc.key)
		if got := desEncrypt(tc.block, &ks, 0); got != binary.BigEndian.Uint64(want[:]) {
			t.Errorf("key %016x block %016x: %016x, want %x", tc.key, tc.block, got, want)
		}
	}
}

// Vectors made on this project's machine: "perl" by perl's crypt()
// (glibc), "openssl" by openssl passwd, "verdaccio" by the libraries
// Verdaccio 5.33's htpasswd plugin uses (unix-crypt-td-js, apache-md5,
// node's crypto), with non-ASCII passwords and base64 salts ('+').
func TestVerify(t *testing.T) {
	bc, _ := bcrypt.GenerateFromPassword([]byte("pässwörd"), 4)
	tests := []struct {
		name, hash, password string
		want                 bool
	}{
		{"DES perl", "abNANd1rDfiNc", "secret", true},
		{"DES perl wrong", "abNANd1rDfiNc", "secreT", false},
		{"DES perl long", "zzXUHfURnGg8I", "password12345", true},
		{"DES only 8 characters count", "zzXUHfURnGg8I", "password", true},
		{"DES 7 characters do not", "zzXUHfURnGg8I", "passwor", false},
		{"DES perl 16 characters", "9Zcy5H5kCTXHQ", "verylongpassword", true},
		{"DES perl empty password", "AB/PLgjMdnCMg", "", true},
		{"DES perl salt ./", "./7H4fGCYxIHQ", "x", true},
		{"DES perl UTF-8", "ZxWa4bg3hpmZo", "pässwörd", true},
		{"DES verdaccio", "abNANd1rDfiNc", "secret", true},
		{"DES verdaccio salt +a", "+ayBhdASYkssU", "secret", true},
		{"DES verdaccio salt +a wrong", "+ayBhdASYkssU", "secrets", false},
		{"DES verdaccio salt a+", "a+.BsLks40Zlc", "secret", true},
		{"DES verdaccio salt +/", "+/qzW3ZfUPTtI", "hunter2", true},
		{"DES verdaccio UTF-16", "Zxq3sdO4/YkFw", "pässwörd", true},
		{"DES verdaccio euro", "q/U0vU0FVMI1w", "€uro12", true},
		{"DES verdaccio euro wrong", "q/U0vU0FVMI1w", "€uro13", false},
		{"DES other salt", "acNANd1rDfiNc", "secret", false},
		{"apr1 openssl", "$apr1$Nk5X2bQ.$I8pRG/MSKW937WFVvhQsK0", "p@ss word", true},
		{"apr1 openssl wrong", "$apr1$Nk5X2bQ.$I8pRG/MSKW937WFVvhQsK0", "p@ss word ", false},
		{"apr1 openssl UTF-8", "$apr1$AbCd1234$zX9lNw/5mmDBqpGTRQ4mG1", "pässwörd", true},
		{"apr1 verdaccio", "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0", "secret", true},
		{"apr1 verdaccio latin-1", "$apr1$AbCd1234$4oyw.N1q/b4JhzuUnf.Rj1", "pässwörd", true},
		{"apr1 with $1$ magic does not match", "$1$saltsalt$LrttParrLPdxvgutaSXWJ0", "secret", false},
		{"md5-crypt openssl", "$1$saltsalt$9xy1btjgzLYfb7hivXtC//", "secret", true},
		{"md5-crypt openssl wrong", "$1$saltsalt$9xy1btjgzLYfb7hivXtC//", "Secret", false},
		{"md5-crypt openssl UTF-8", "$1$xY./9zQw$Cw5FWPTo5UwLUex3aGOK/0", "pässwörd", true},
		{"md5-crypt verdaccio latin-1", "$1$xY./9zQw$UZ7w7ieUEpaKUInfCpo4T.", "pässwörd", true},
		{"SHA-1 verdaccio", "{SHA}9Rfd8dMqES/xrVXGbRsSyzjn6Pc=", "pässwörd", true},
		{"SHA-1 wrong", "{SHA}9Rfd8dMqES/xrVXGbRsSyzjn6Pc=", "passwörd", false},
		{"bcrypt", string(bc), "pässwörd", true},
		{"bcrypt wrong", string(bc), "pässwörd!", false},
		{"plain text never", "{PLAIN}secret", "secret", false},
		{"plain text without a prefix never", "secret", "secret", false},
		{"13 plain characters are no DES hash of themselves", "abcdefghijklm", "abcdefghijklm", false},
		{"SHA-crypt unsupported", "$6$abc$" + strings.Repeat("x", 86), "secret", false},
		{"empty hash", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify(tc.hash, tc.password); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIdentify(t *testing.T) {
	malformed := errors.New("malformed") // stands for any MalformedError
	tests := []struct {
		name, hash string
		want       Kind
		wantErr    error
	}{
		{"DES", "abNANd1rDfiNc", DESCrypt, nil},
		{"DES base64 salt", "+ayBhdASYkssU", DESCrypt, nil},
		{"DES bad character", "ab NANd1rDfiN", "", malformed},
		{"DES last character holds 4 bits", "abNANd1rDfiNd", "", malformed},
		{"DES salt outside base64", "a-NANd1rDfiNc", "", malformed},
		{"apr1", "$apr1$Nk5X2bQ.$I8pRG/MSKW937WFVvhQsK0", APR1, nil},
		{"apr1 short sum", "$apr1$Nk5X2bQ.$I8pRG/MSKW937WFVvhQsK", "", malformed},
		{"apr1 long salt", "$apr1$Nk5X2bQ.x$I8pRG/MSKW937WFVvhQsK0", "", malformed},
		{"apr1 no salt", "$apr1$$I8pRG/MSKW937WFVvhQsK0", "", malformed},
		{"apr1 last character", "$apr1$Nk5X2bQ.$I8pRG/MSKW937WFVvhQsKz", "", malformed},
		{"md5-crypt", "$1$saltsalt$9xy1btjgzLYfb7hivXtC//", MD5Crypt, nil},
		{"md5-crypt no separator", "$1$saltsalt9xy1btjgzLYfb7hivXtC//", "", malformed},
		{"SHA-1", "{SHA}9Rfd8dMqES/xrVXGbRsSyzjn6Pc=", SHA1, nil},
		{"SHA-1 short", "{SHA}9Rfd8dMqES/xrVXGbRsSyzjn6P", "", malformed},
		{"SHA-1 not base64", "{SHA}9Rfd8dMqES/xrVXGbRsSyzjn6P!=", "", malformed},
		{"bcrypt", "$2y$10$" + strings.Repeat("a", 53), Bcrypt, nil},
		{"bcrypt short", "$2a$10$short", "", malformed},
		{"plain", "{PLAIN}secret", "", ErrPlainText},
		{"sha-crypt", "$6$salt$hash", "", ErrUnsupported},
		{"sha256-crypt", "$5$salt$hash", "", ErrUnsupported},
		{"unknown", "hunter2hunter2", "", ErrUnknown},
		{"empty", "", "", ErrEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Identify(tc.hash)
			switch {
			case tc.wantErr == malformed:
				if m := (MalformedError{}); !errors.As(err, &m) {
					t.Fatalf("err %v, want a malformed hash", err)
				}
			case !errors.Is(err, tc.wantErr):
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			case err == nil && got != tc.want:
				t.Fatalf("kind %q, want %q", got, tc.want)
			}
			if err != nil && len(tc.hash) > 5 && strings.Contains(err.Error(), tc.hash[3:]) {
				t.Fatalf("the error repeats the hash: %v", err)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("abNANd1rDfiNc", "secret")
	f.Add("$apr1$Nk5X2bQ.$I8pRG/MSKW937WFVvhQsK0", "p")
	f.Add("{SHA}9Rfd8dMqES/xrVXGbRsSyzjn6Pc=", "x")
	f.Fuzz(func(t *testing.T, hash, password string) {
		Verify(hash, password) // must not panic
	})
}

// What one login attempt against an imported hash costs, per kind.
func BenchmarkVerify(b *testing.B) {
	bc, _ := bcrypt.GenerateFromPassword([]byte("secret"), 10)
	for _, h := range []struct{ name, hash string }{
		{"DES", "abNANd1rDfiNc"},
		{"apr1", "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0"},
		{"SHA-1", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="},
		{"bcrypt-10", string(bc)},
	} {
		b.Run(h.name, func(b *testing.B) {
			for b.Loop() {
				Verify(h.hash, "secret")
			}
		})
	}
}
