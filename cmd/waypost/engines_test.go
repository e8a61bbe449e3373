package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/config"
)

func TestKafkaSecurity(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)

	tlsCfg, mech, err := kafkaSecurity(config.Kafka{})
	require.NoError(t, err)
	require.Nil(t, tlsCfg, "TLS off by default")
	require.Nil(t, mech, "SASL off by default")

	for mechanism, name := range map[string]string{"plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"} {
		_, mech, err := kafkaSecurity(config.Kafka{SASL: config.KafkaSASL{Mechanism: mechanism, Username: "u", Password: "p"}})
		require.NoError(t, err)
		require.Equal(t, name, mech.Name())
	}

	tlsCfg, _, err = kafkaSecurity(config.Kafka{TLS: config.KafkaTLS{Enabled: true, CAFile: certFile,
		CertFile: certFile, KeyFile: keyFile, ServerName: "kafka.internal"}})
	require.NoError(t, err)
	require.NotNil(t, tlsCfg.RootCAs, "the CA file is the trust store")
	require.Len(t, tlsCfg.Certificates, 1)
	require.Equal(t, "kafka.internal", tlsCfg.ServerName)
	require.False(t, tlsCfg.InsecureSkipVerify)

	_, _, err = kafkaSecurity(config.Kafka{TLS: config.KafkaTLS{Enabled: true, CAFile: filepath.Join(dir, "missing.pem")}})
	require.ErrorContains(t, err, "queue.kafka.tls.ca_file")
	_, _, err = kafkaSecurity(config.Kafka{TLS: config.KafkaTLS{Enabled: true, CAFile: keyFile}})
	require.ErrorContains(t, err, "queue.kafka.tls.ca_file: no PEM certificate")
	_, _, err = kafkaSecurity(config.Kafka{TLS: config.KafkaTLS{Enabled: true, CertFile: certFile, KeyFile: certFile}})
	require.ErrorContains(t, err, "queue.kafka.tls.cert_file/key_file")
}

// writeSelfSigned writes a self-signed certificate and its key as PEM files.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafka.internal"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}
