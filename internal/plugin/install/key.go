// Package install installs plugins only once they are proven to be what
// their author signed. An archive is a deterministic tar.gz of the plugin's
// tree; its signature binds the archive's SHA-256 to an Ed25519 key, and
// Install checks both against the operator's trusted keys before a single
// byte is unpacked. Unpacking then refuses anything that could reach
// outside the plugin's folder or make it more than files (absolute paths,
// "..", escaping links, devices, setuid bits, archives that inflate without
// end), happens in a temporary folder beside the plugins, and ends in one
// rename, so a failure leaves nothing behind and a replaced version stays
// until its successor is complete.
//
// A signed index lists plugins, versions, URLs and checksums; Install
// resolves a bare name through it, and the archive must then match both
// the index's checksum and its own signature.
//
// This package reads only a plugin's name and version from its plugin.yml;
// the manifest itself is internal/plugin's.
package install

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// The key files are one line each: a tag, the algorithm and the key in
// standard base64, then an optional comment (Keygen writes the key ID).
const (
	publicKeyTag  = "deus-plugin-key"
	privateKeyTag = "deus-plugin-private-key"
	keyAlgorithm  = "ed25519"
)

// Keygen makes a new Ed25519 key pair and returns both halves encoded as
// one line of text: pub is what operators add to their trusted keys, priv
// (the 32-byte seed) is what the author keeps secret and signs with.
func Keygen() (pub, priv []byte, err error) {
	p, s, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	return EncodePublicKey(p), encodeLine(privateKeyTag, s.Seed(), KeyID(p)), nil
}

// EncodePublicKey encodes pub as a trusted-key line, with its key ID as the
// comment.
func EncodePublicKey(pub ed25519.PublicKey) []byte {
	return encodeLine(publicKeyTag, pub, KeyID(pub))
}

func encodeLine(tag string, key []byte, id string) []byte {
	return fmt.Appendf(nil, "%s %s %s id=%s\n", tag, keyAlgorithm, base64.StdEncoding.EncodeToString(key), id)
}

// KeyID names a public key by the first 8 bytes of its SHA-256, in hex.
// Signatures carry it so that the verifier knows which trusted key to try.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ParsePublicKey decodes one trusted-key line.
func ParsePublicKey(line string) (ed25519.PublicKey, error) {
	b, err := parseLine(line, publicKeyTag, ed25519.PublicKeySize)
	if err != nil {
		return nil, err
	}
	return ed25519.PublicKey(b), nil
}

// ParsePrivateKey decodes a private key file: exactly one private-key line,
// with blank lines and # comments around it allowed.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	lines, err := keyLines(data)
	if err != nil {
		return nil, err
	}
	if len(lines) != 1 {
		return nil, fmt.Errorf("want exactly one %s line, found %d", privateKeyTag, len(lines))
	}
	seed, err := parseLine(lines[0].text, privateKeyTag, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", lines[0].n, err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func parseLine(line, tag string, size int) ([]byte, error) {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != tag {
		if len(f) > 0 && (f[0] == publicKeyTag || f[0] == privateKeyTag) {
			return nil, fmt.Errorf("found a %s, want a %s", f[0], tag)
		}
		return nil, fmt.Errorf("want %q, then %q and the key in base64", tag, keyAlgorithm)
	}
	if f[1] != keyAlgorithm {
		return nil, fmt.Errorf("algorithm %q: only %s is supported", f[1], keyAlgorithm)
	}
	b, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if len(b) != size {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(b), size)
	}
	return b, nil
}

type keyLine struct {
	n    int
	text string
}

func keyLines(data []byte) ([]keyLine, error) {
	var out []keyLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		out = append(out, keyLine{n: n, text: s})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Keyring holds the public keys an operator trusts, by key ID.
type Keyring struct {
	keys map[string]ed25519.PublicKey
}

// LoadTrusted builds a keyring from sources, each either a trusted-key line
// given inline (it starts with "deus-plugin-key ") or the path of a file of
// such lines, with blank lines and # comments allowed. Every problem is
// reported, each naming its source and line.
func LoadTrusted(sources ...string) (*Keyring, error) {
	k := &Keyring{keys: map[string]ed25519.PublicKey{}}
	var errs []error
	for i, src := range sources {
		if strings.HasPrefix(strings.TrimSpace(src), publicKeyTag+" ") {
			pub, err := ParsePublicKey(src)
			if err != nil {
				errs = append(errs, fmt.Errorf("trusted key %d: %w", i, err))
				continue
			}
			k.Add(pub)
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("trusted keys: %w", err))
			continue
		}
		lines, err := keyLines(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", src, err))
			continue
		}
		if len(lines) == 0 {
			errs = append(errs, fmt.Errorf("%s: no keys", src))
		}
		for _, l := range lines {
			pub, err := ParsePublicKey(l.text)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s line %d: %w", src, l.n, err))
				continue
			}
			k.Add(pub)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, nil
}

// Add trusts pub.
func (k *Keyring) Add(pub ed25519.PublicKey) {
	if k.keys == nil {
		k.keys = map[string]ed25519.PublicKey{}
	}
	k.keys[KeyID(pub)] = slices.Clone(pub)
}

// IDs lists the trusted key IDs in order.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (k *Keyring) lookup(id string) (ed25519.PublicKey, bool) {
	if k == nil {
		return nil, false
	}
	pub, ok := k.keys[id]
	return pub, ok
}
