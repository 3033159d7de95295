package install

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// Errors Install and the Verify methods return, for callers that explain
// a refusal (a changed archive is not the same news as an untrusted
// author).
var (
	// ErrChecksum means the archive is not the one the signature or the
	// index names: it changed after signing, or in transit.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrUnknownKey means the signature is by a key the operator does not
	// trust.
	ErrUnknownKey = errors.New("unknown key")
	// ErrBadSignature means the signature does not verify with the trusted
	// key it names.
	ErrBadSignature = errors.New("bad signature")
)

// The signed message is a domain tag and the SHA-256 of the file in hex.
// The two tags keep a plugin's signature from passing as an index's, and
// the other way round; the v1 leaves room for a change of scheme.
const (
	archiveDomain = "deus-plugin-v1\n"
	indexDomain   = "deus-plugin-index-v1\n"
)

// Signature is the content of a .sig file: the key that signed, the
// SHA-256 of the signed file in hex, and the Ed25519 signature (standard
// base64) over the domain tag followed by that checksum.
type Signature struct {
	KeyID     string `json:"key_id"`
	SHA256    string `json:"sha256"`
	Signature string `json:"signature"`
}

// Sign signs a plugin archive with priv.
func Sign(archive []byte, priv ed25519.PrivateKey) (Signature, error) {
	return sign(archiveDomain, archive, priv)
}

// SignIndex signs an index file with priv.
func SignIndex(index []byte, priv ed25519.PrivateKey) (Signature, error) {
	return sign(indexDomain, index, priv)
}

func sign(domain string, data []byte, priv ed25519.PrivateKey) (Signature, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Signature{}, fmt.Errorf("private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	pub, ok := priv.Public().(ed25519.PublicKey)
	if !ok {
		return Signature{}, errors.New("private key has no ed25519 public half")
	}
	sum := Checksum(data)
	return Signature{
		KeyID:     KeyID(pub),
		SHA256:    sum,
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(domain+sum))),
	}, nil
}

// Checksum is the SHA-256 of data in lowercase hex, as signatures and the
// index write it.
func Checksum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Marshal encodes s as the .sig file's JSON.
func (s Signature) Marshal() []byte {
	b, _ := json.MarshalIndent(s, "", "  ") // three strings cannot fail to encode
	return append(b, '\n')
}

var (
	keyIDPattern  = regexp.MustCompile(`^[0-9a-f]{16}$`)
	sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ParseSignature decodes a .sig file strictly: unknown fields, a malformed
// key ID or checksum, or a signature of the wrong size are refused.
func ParseSignature(data []byte) (Signature, error) {
	var s Signature
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Signature{}, fmt.Errorf("decode signature: %w", err)
	}
	if dec.More() {
		return Signature{}, errors.New("decode signature: data after the object")
	}
	var errs []error
	if !keyIDPattern.MatchString(s.KeyID) {
		errs = append(errs, fmt.Errorf("key_id %q: want 16 lowercase hex digits", s.KeyID))
	}
	if !sha256Pattern.MatchString(s.SHA256) {
		errs = append(errs, fmt.Errorf("sha256 %q: want 64 lowercase hex digits", s.SHA256))
	}
	if b, err := base64.StdEncoding.DecodeString(s.Signature); err != nil || len(b) != ed25519.SignatureSize {
		errs = append(errs, fmt.Errorf("signature: want %d bytes in base64", ed25519.SignatureSize))
	}
	return s, errors.Join(errs...)
}

// Verify checks that sig is a trusted key's signature of archive: the
// checksum first (ErrChecksum, with both values), then the key
// (ErrUnknownKey, with its ID), then the signature (ErrBadSignature).
func (k *Keyring) Verify(archive []byte, sig Signature) error {
	return k.verify(archiveDomain, archive, sig)
}

// VerifyIndex checks that sig is a trusted key's signature of an index
// file, as Verify does for an archive.
func (k *Keyring) VerifyIndex(index []byte, sig Signature) error {
	return k.verify(indexDomain, index, sig)
}

func (k *Keyring) verify(domain string, data []byte, sig Signature) error {
	if got := Checksum(data); got != sig.SHA256 {
		return fmt.Errorf("%w: signature is for sha256 %s, file is %s", ErrChecksum, sig.SHA256, got)
	}
	pub, ok := k.lookup(sig.KeyID)
	if !ok {
		return fmt.Errorf("%w: signed by key %s, which is not among the %d trusted", ErrUnknownKey, sig.KeyID, len(k.IDs()))
	}
	raw, err := base64.StdEncoding.DecodeString(sig.Signature)
	if err != nil || !ed25519.Verify(pub, []byte(domain+sig.SHA256), raw) {
		return fmt.Errorf("%w: signature does not verify with key %s", ErrBadSignature, sig.KeyID)
	}
	return nil
}
