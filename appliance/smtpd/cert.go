package smtpd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Names of the generated certificate files in the data directory.
const (
	selfSignedCert = "smtpd-cert.pem"
	selfSignedKey  = "smtpd-key.pem"
)

// TLSConfig returns the STARTTLS configuration: the PEM certificate and key
// files when both are set, else the self-signed certificate that
// LoadOrCreateCertificate keeps in dataDir.
func TLSConfig(certFile, keyFile, dataDir, hostname string) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case certFile != "" && keyFile != "":
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("smtpd: loading TLS certificate %s and key %s failed: %w "+
				"(check that both are PEM files and belong together)", certFile, keyFile, err)
		}
	case certFile != "" || keyFile != "":
		return nil, fmt.Errorf("smtpd: tls_cert %q and tls_key %q: set both or neither", certFile, keyFile)
	default:
		cert, err = LoadOrCreateCertificate(dataDir, hostname)
		if err != nil {
			return nil, err
		}
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		// Senders on the internet rarely verify certificates (RFC 7435
		// opportunistic TLS); TLS 1.2 is still the floor.
		MinVersion: tls.VersionTLS12,
	}, nil
}

// LoadOrCreateCertificate loads the self-signed certificate kept in dir, or
// generates an ECDSA P-256 certificate for hostname, valid for ten years,
// and writes it there first (the key with mode 0600). A certificate for
// another hostname is kept: delete the files to get a new one.
func LoadOrCreateCertificate(dir, hostname string) (tls.Certificate, error) {
	certPath := filepath.Join(dir, selfSignedCert)
	keyPath := filepath.Join(dir, selfSignedKey)

	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		return cert, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("smtpd: loading %s and %s failed: %w "+
			"(delete both to generate a new self-signed certificate)", certPath, keyPath, err)
	}

	certPEM, keyPEM, err := generateCertificate(hostname)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func generateCertificate(hostname string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("smtpd: generating a TLS key failed: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("smtpd: generating a certificate serial failed: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname},
		DNSNames:              []string{hostname},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("smtpd: creating a self-signed certificate failed: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("smtpd: encoding the TLS key failed: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// writeFileAtomic writes data to a temporary file, syncs it and renames it
// into place, so that a crash never leaves a half-written key.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("smtpd: writing %s failed: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("smtpd: writing %s failed: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("smtpd: writing %s failed: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("smtpd: syncing %s failed: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("smtpd: writing %s failed: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("smtpd: renaming into %s failed: %w", path, err)
	}
	return nil
}
