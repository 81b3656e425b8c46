package webui

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
)

// Certificate file names inside the web UI's state directory.
const (
	certFile = "admin-cert.pem"
	keyFile  = "admin-key.pem"
)

// LoadOrCreateCertificate returns the admin listener's certificate from
// stateDir, generating a self-signed one on first use, and its SHA-256
// fingerprint in the colon-separated form browsers show. created is true
// when this call generated it, so the caller can print the fingerprint for
// the administrator to compare on first login.
func LoadOrCreateCertificate(stateDir, hostname string) (cert tls.Certificate, fingerprint string, created bool, err error) {
	certPath := filepath.Join(stateDir, certFile)
	keyPath := filepath.Join(stateDir, keyFile)

	cert, err = tls.LoadX509KeyPair(certPath, keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		if err := generateCertificate(certPath, keyPath, hostname); err != nil {
			return tls.Certificate{}, "", false, err
		}
		created = true
		cert, err = tls.LoadX509KeyPair(certPath, keyPath)
	}
	if err != nil {
		return tls.Certificate{}, "", false, fmt.Errorf("admin certificate %s: %w (delete both %s and %s to generate a new one)",
			certPath, err, certFile, keyFile)
	}
	return cert, Fingerprint(cert.Certificate[0]), created, nil
}

// Fingerprint formats the SHA-256 digest of a DER certificate as
// colon-separated upper-case hex.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// generateCertificate writes a self-signed ECDSA P-256 certificate valid
// for ten years: an appliance may run that long without anyone renewing
// it, and the administrator trusts it by its fingerprint, not by a CA.
func generateCertificate(certPath, keyPath, hostname string) error {
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(certPath), err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hostname, Organization: []string{"Lambgate appliance"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{hostname, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}

	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The key goes first: a certificate without its key would make the next
	// start fail instead of generating a new pair.
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := settings.WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", keyPath, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := settings.WriteFileAtomic(certPath, certPEM, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", certPath, err)
	}
	return nil
}
