package secretscan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// maxKeysBytes bounds the keys document read from an origin.
const maxKeysBytes = 1 << 20

// Why a report's signature was not accepted. errBadSignature is answered
// 400 (the sender will not succeed by retrying); errKeysUnavailable 503 (it
// should retry: the keys could not be had now).
var (
	errBadSignature    = errors.New("secretscan: signature not verified")
	errKeysUnavailable = errors.New("secretscan: the origin's public keys are unavailable")
)

// A keyring holds one origin's public keys, fetched from its KeysURL on the
// first report and kept for ttl; a report signed with a key id it does not
// hold makes it fetch them again, at most once per refetch, since key
// endpoints are rate-limited.
type keyring struct {
	origin  Origin
	client  *http.Client
	ttl     time.Duration
	refetch time.Duration
	log     *slog.Logger

	mu      sync.Mutex // held during a fetch: concurrent reports wait for its keys
	keys    map[string]*ecdsa.PublicKey
	fetched time.Time // when keys were fetched; zero: never
	tried   time.Time // the last fetch, successful or not
}

// verify checks that sig (base64 of an ASN.1 DER ECDSA signature) signs
// the SHA-256 of body with the key named keyID.
func (k *keyring) verify(ctx context.Context, keyID, sig string, body []byte) error {
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || keyID == "" {
		return errBadSignature
	}
	pub, err := k.key(ctx, keyID)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, sum[:], der) {
		return errBadSignature
	}
	return nil
}

// key returns the public key named id.
func (k *keyring) key(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	pub, known := k.keys[id]
	if known && now.Sub(k.fetched) < k.ttl {
		return pub, nil
	}
	if !k.tried.IsZero() && now.Sub(k.tried) < k.refetch {
		if known {
			// Stale, but the last fetch that could refresh it failed a
			// moment ago: the key was published, and an unreachable keys
			// endpoint is no sign that it was withdrawn.
			return pub, nil
		}
		// An id the keys fetched a moment ago lack (a key that is new to
		// us, or a forgery): the sender retries later, when a fetch is
		// allowed again.
		return nil, fmt.Errorf("%w: fetched less than %v ago", errKeysUnavailable, k.refetch)
	}
	k.tried = now
	keys, err := k.fetch(ctx)
	if err != nil {
		k.log.LogAttrs(ctx, slog.LevelWarn, "secretscan: public keys not fetched", slog.String("origin", k.origin.Name), slog.Any("err", err))
		if known {
			return pub, nil // as above: kept until the endpoint answers
		}
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	k.keys, k.fetched = keys, now
	if pub, ok := keys[id]; ok {
		return pub, nil
	}
	return nil, fmt.Errorf("%w: the origin publishes no key with that id", errBadSignature)
}

// fetch reads the origin's keys document and returns its usable keys by id.
// A key that is not a PEM ECDSA P-256 public key is skipped (and logged);
// a document without a usable key is an error.
func (k *keyring) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.origin.KeysURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", k.origin.KeysURL, resp.StatusCode)
	}
	var doc struct {
		PublicKeys []struct {
			ID        string `json:"key_identifier"`
			Key       string `json:"key"`
			IsCurrent bool   `json:"is_current"`
		} `json:"public_keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxKeysBytes)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("GET %s: not a keys document: %w", k.origin.KeysURL, err)
	}
	keys := make(map[string]*ecdsa.PublicKey, len(doc.PublicKeys))
	for _, pk := range doc.PublicKeys {
		pub, err := parseKey(pk.Key)
		if err != nil || pk.ID == "" {
			k.log.LogAttrs(ctx, slog.LevelWarn, "secretscan: public key skipped", slog.String("origin", k.origin.Name),
				slog.String("key_identifier", pk.ID), slog.Any("err", err))
			continue
		}
		// Any published key verifies, current or not: a sender may sign
		// with the previous one while it rotates.
		keys[pk.ID] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("GET %s: no ECDSA P-256 public key in %d keys", k.origin.KeysURL, len(doc.PublicKeys))
	}
	return keys, nil
}

// parseKey parses a PEM-encoded PKIX ECDSA P-256 public key.
func parseKey(s string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not PEM")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return pub, nil
}
