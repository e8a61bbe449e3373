package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// KeyPrefix starts every Waypost API key, so a leaked key is recognisable
// by secret scanners.
const KeyPrefix = "wp_"

// NewKey returns a fresh API key: the plaintext to hand out once, a public
// key id to name it by, and the hash to store.
//
// The key carries 256 random bits, so a single SHA-256 is enough: slow
// password hashes such as bcrypt exist to resist guessing low-entropy
// secrets, which these are not, and a key is checked on every request where
// bcrypt's deliberate ~50 ms would dominate the latency budget.
func NewKey() (plaintext, id, hash string) {
	plaintext = KeyPrefix + base64.RawURLEncoding.EncodeToString(random(32))
	id = "key_" + hex.EncodeToString(random(8))
	return plaintext, id, HashKey(plaintext)
}

// HashKey is the stored form of a key: hex SHA-256 of the plaintext.
func HashKey(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// HashEqual compares two key hashes in constant time.
func HashEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// LooksLikeKey reports whether s has the shape of a Waypost key, so a store
// can refuse obvious garbage without a query.
func LooksLikeKey(s string) bool {
	return strings.HasPrefix(s, KeyPrefix) && len(s) > len(KeyPrefix)+16 && len(s) <= 256
}

// random returns n bytes from the system's CSPRNG, which never fails on the
// platforms Go supports.
func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
