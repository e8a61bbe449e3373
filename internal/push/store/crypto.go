package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MasterKeySize is the length of a master key: AES-256.
const MasterKeySize = 32

// encPrefix marks an encrypted config value: "enc:v1:<key id>:<base64 of
// nonce‖ciphertext>". The key id lets the master key rotate: values sealed
// under an older key still open while that key is given as a previous key.
const encPrefix = "enc:v1:"

// ErrMasterKey is returned for a master key of the wrong size.
var ErrMasterKey = errors.New("push master key must be 32 bytes")

// DeriveMasterKey turns a passphrase (config push.master_key) into a 32-byte
// master key with HKDF-SHA256. A passphrase is expected to be long and
// random; HKDF only shapes it, it does not make a weak one strong.
func DeriveMasterKey(passphrase string) ([]byte, error) {
	if passphrase == "" {
		return nil, fmt.Errorf("derive master key: %w: empty passphrase", ErrMasterKey)
	}
	k, err := hkdf.Key(sha256.New, []byte(passphrase), []byte("waypost"), "waypost push channel-account secrets v1", MasterKeySize)
	if err != nil {
		return nil, fmt.Errorf("derive master key: %w", err)
	}
	return k, nil
}

// sealer encrypts secrets under the current master key and opens them under
// any known one.
type sealer struct {
	current string
	aeads   map[string]cipher.AEAD
}

func newSealer(master []byte, previous ...[]byte) (*sealer, error) {
	s := &sealer{aeads: make(map[string]cipher.AEAD)}
	for i, k := range append([][]byte{master}, previous...) {
		if len(k) != MasterKeySize {
			return nil, fmt.Errorf("master key %d: %w (got %d)", i, ErrMasterKey, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("master key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("master key %d: %w", i, err)
		}
		id := keyID(k)
		if i == 0 {
			s.current = id
		}
		s.aeads[id] = aead
	}
	return s, nil
}

// keyID names a master key without revealing it: the first 4 bytes of a
// domain-separated SHA-256, in hex.
func keyID(k []byte) string {
	sum := sha256.Sum256(append([]byte("waypost key id\x00"), k...))
	return hex.EncodeToString(sum[:4])
}

// seal encrypts plaintext; aad binds the ciphertext to its account and
// field, so it cannot be copied into another account's config.
func (s *sealer) seal(plaintext, aad string) string {
	aead := s.aeads[s.current]
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
	return encPrefix + s.current + ":" + base64.RawStdEncoding.EncodeToString(out)
}

// open decrypts a value seal produced.
func (s *sealer) open(value, aad string) (string, error) {
	rest, ok := strings.CutPrefix(value, encPrefix)
	if !ok {
		return "", errors.New("secret is not encrypted")
	}
	kid, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", errors.New("malformed encrypted secret")
	}
	aead, ok := s.aeads[kid]
	if !ok {
		return "", fmt.Errorf("secret sealed under unknown master key %s", kid)
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", errors.New("malformed encrypted secret")
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(aad))
	if err != nil {
		return "", fmt.Errorf("open secret: %w", err)
	}
	return string(pt), nil
}

// secretFields are the config keys, at any depth, whose values are secrets.
var secretFields = map[string]bool{
	"secret": true, "password": true, "token": true, "appSecret": true, "accessKeySecret": true,
}

// IsSecretField reports whether a config key holds a secret.
func IsSecretField(name string) bool { return secretFields[name] }

// Mask hides a secret for display: "****" plus at most its last two
// characters, and those only when the secret is long enough that two
// characters reveal little.
func Mask(secret string) string {
	r := []rune(secret)
	if len(r) < 8 {
		return "****"
	}
	return "****" + string(r[len(r)-2:])
}

// IsMasked reports whether v looks like Mask's output, so a client that
// sends back what it read does not overwrite the secret with the mask.
func IsMasked(v string) bool { return strings.HasPrefix(v, "****") && len([]rune(v)) <= 6 }

// walkSecrets calls fn for every string secret in cfg (nested objects
// included), replacing it with fn's result; path names the field for AAD.
func walkSecrets(cfg map[string]any, prefix string, fn func(path, v string) (string, error)) error {
	for k, v := range cfg {
		path := prefix + k
		switch tv := v.(type) {
		case map[string]any:
			if err := walkSecrets(tv, path+".", fn); err != nil {
				return err
			}
		case string:
			if !secretFields[k] {
				continue
			}
			nv, err := fn(path, tv)
			if err != nil {
				return fmt.Errorf("config field %s: %w", path, err)
			}
			cfg[k] = nv
		}
	}
	return nil
}
