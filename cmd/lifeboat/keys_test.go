package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/lifeboat-dr/lifeboat/worker"
)

// The CLI signs with the ssh-agent's key that the allowed signers give
// --as NAME; with several keys and no allowed signers it asks which.
func TestTheCLISignsWithTheAgentsKeyForTheName(t *testing.T) {
	keyring := agent.NewKeyring()
	pubs := map[string]ssh.PublicKey{}
	for _, name := range []string{"bob", "carol"} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		require.NoError(t, keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: name}))
		s, err := ssh.NewSignerFromKey(priv)
		require.NoError(t, err)
		pubs[name] = s.PublicKey()
	}
	dir, err := os.MkdirTemp("", "agent") // short: unix socket paths are limited
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "a.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go agent.ServeAgent(keyring, c)
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)

	_, err = keyFinder(worker.SignaturesConfig{})("bob")
	assert.ErrorContains(t, err, "the ssh-agent holds 2 keys: set signatures.allowedSigners")

	signers := filepath.Join(t.TempDir(), "allowed_signers")
	line := func(name string) string {
		return name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pubs[name])))
	}
	require.NoError(t, os.WriteFile(signers, []byte(line("bob")+"\n"+line("carol")+"\n"), 0o600))
	cfg := worker.SignaturesConfig{AllowedSigners: signers}
	for _, name := range []string{"bob", "carol"} {
		key, err := keyFinder(cfg)(name)
		require.NoError(t, err)
		require.NotNil(t, key)
		assert.Equal(t, pubs[name].Marshal(), key.PublicKey().Marshal(), "%s's own key", name)
	}
	_, err = keyFinder(cfg)("dan")
	assert.ErrorContains(t, err, "none of the ssh-agent's 2 keys is dan's")

	t.Setenv("SSH_AUTH_SOCK", "")
	key, err := keyFinder(worker.SignaturesConfig{})("bob")
	assert.NoError(t, err)
	assert.Nil(t, key, "no agent, no key file: the message goes unsigned")
}
