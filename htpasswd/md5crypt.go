package htpasswd

import "crypto/md5"

// md5Crypt computes the MD5-based crypt of FreeBSD ("$1$") and its Apache
// variant ("$apr1$", the same with another prefix): 1000 rounds of MD5
// over the password, the salt and the previous digest. Written from the
// algorithm's description.
func md5Crypt(key []byte, magic, salt string) string {
	alt := md5.Sum(append(append(append([]byte{}, key...), salt...), key...))
	ctx := append(append(append([]byte{}, key...), magic...), salt...)
	for n := len(key); n > 0; n -= 16 {
		ctx = append(ctx, alt[:min(n, 16)]...)
	}
	for i := len(key); i != 0; i >>= 1 {
		if i&1 == 1 {
			ctx = append(ctx, 0)
		} else {
			ctx = append(ctx, key[0])
		}
	}
	sum := md5.Sum(ctx)
	buf := make([]byte, 0, 2*len(key)+len(salt)+16)
	for i := 0; i < 1000; i++ {
		buf = buf[:0]
		if i&1 == 1 {
			buf = append(buf, key...)
		} else {
			buf = append(buf, sum[:]...)
		}
		if i%3 != 0 {
			buf = append(buf, salt...)
		}
		if i%7 != 0 {
			buf = append(buf, key...)
		}
		if i&1 == 1 {
			buf = append(buf, sum[:]...)
		} else {
			buf = append(buf, key...)
		}
		sum = md5.Sum(buf)
	}
	out := append([]byte(magic+salt), '$')
	put := func(v uint32, n int) {
		for ; n > 0; n-- {
			out = append(out, cryptAlphabet[v&0x3f])
			v >>= 6
		}
	}
	for _, t := range [5][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		put(uint32(sum[t[0]])<<16|uint32(sum[t[1]])<<8|uint32(sum[t[2]]), 4)
	}
	put(uint32(sum[11]), 2)
	return string(out)
}
