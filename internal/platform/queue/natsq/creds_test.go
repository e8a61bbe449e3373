package natsq_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/platform/queue/natsq/natsqtest"
	"github.com/waypost/waypost/internal/platform/queue/queuetest"
)

// TestCredentialsFile connects with a credentials file to a server in
// operator mode (decentralised auth), publishes and consumes; without the
// file, or with another user's, the server refuses the connection.
func TestCredentialsFile(t *testing.T) {
	operator, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opPub, err := operator.PublicKey()
	require.NoError(t, err)
	opClaims := jwt.NewOperatorClaims(opPub)

	account := func(js bool) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		require.NoError(t, err)
		pub, err := kp.PublicKey()
		require.NoError(t, err)
		ac := jwt.NewAccountClaims(pub)
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		signed, err := ac.Encode(operator)
		require.NoError(t, err)
		return kp, pub, signed
	}
	_, sysPub, sysJWT := account(false)
	appKP, appPub, appJWT := account(true)

	resolver := &server.MemAccResolver{}
	require.NoError(t, resolver.Store(sysPub, sysJWT))
	require.NoError(t, resolver.Store(appPub, appJWT))
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		TrustedOperators: []*jwt.OperatorClaims{opClaims}, AccountResolver: resolver, SystemAccount: sysPub,
		NoSigs: true, NoLog: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(30*time.Second))
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	url := fmt.Sprintf("nats://%s", srv.Addr())

	creds := func(signer nkeys.KeyPair) string {
		user, err := nkeys.CreateUser()
		require.NoError(t, err)
		pub, err := user.PublicKey()
		require.NoError(t, err)
		signed, err := jwt.NewUserClaims(pub).Encode(signer)
		require.NoError(t, err)
		seed, err := user.Seed()
		require.NoError(t, err)
		file, err := jwt.FormatUserConfig(signed, seed)
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), "user.creds")
		require.NoError(t, os.WriteFile(path, file, 0o600))
		return path
	}

	queuetest.RoundTrip(t, natsqtest.Open(t, natsq.Config{URL: url, CredentialsFile: creds(appKP)}, nil))

	// An account the server does not know signs this user.
	stranger, err := nkeys.CreateAccount()
	require.NoError(t, err)
	for name, cfg := range map[string]natsq.Config{
		"no credentials":               {URL: url},
		"a user of an unknown account": {URL: url, CredentialsFile: creds(stranger)},
		"missing file":                 {URL: url, CredentialsFile: filepath.Join(t.TempDir(), "none.creds")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := natsq.New(t.Context(), cfg, nil, nil)
			require.ErrorIs(t, err, queue.ErrUnavailable)
		})
	}
}
