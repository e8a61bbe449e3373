package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority and one certificate it signed,
// valid for 127.0.0.1 and the given DNS names as a server and as a client:
// enough for TLS tests against local servers.
type PKI struct {
	// CA is the authority's certificate, DER encoded.
	CA []byte
	// Cert is the signed certificate with its private key.
	Cert tls.Certificate
	// Pool trusts the CA and nothing else.
	Pool *x509.CertPool
}

// NewPKI makes a PKI whose certificate names 127.0.0.1 and dnsNames.
func NewPKI(t testing.TB, dnsNames ...string) *PKI {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "waypost test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	check(t, err)
	ca, err := x509.ParseCertificate(caDER)
	check(t, err)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "waypost test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames: dnsNames, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	check(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &PKI{CA: caDER, Cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, Pool: pool}
}

// ServerTLS is a server's TLS configuration presenting the certificate.
func (p *PKI) ServerTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{p.Cert}}
}

// ClientTLS is a client's TLS configuration trusting only the CA.
func (p *PKI) ClientTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.Pool}
}

// WriteFiles writes the CA, the certificate and its key as PEM files in dir.
func (p *PKI) WriteFiles(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	keyDER, err := x509.MarshalECPrivateKey(p.Cert.PrivateKey.(*ecdsa.PrivateKey))
	check(t, err)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{
		caFile:   {Type: "CERTIFICATE", Bytes: p.CA},
		certFile: {Type: "CERTIFICATE", Bytes: p.Cert.Certificate[0]},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		check(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	}
	return caFile, certFile, keyFile
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
