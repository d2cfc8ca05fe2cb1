package worker_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/worker"
)

func TestCodecRoundTripAndRotation(t *testing.T) {
	old, err := worker.NewKeyLine("2026-q3")
	require.NoError(t, err)
	next, err := worker.NewKeyLine("2026-q4")
	require.NoError(t, err)
	before, err := worker.ParseKeys(old, "keys")
	require.NoError(t, err)
	p, err := converter.GetDefaultDataConverter().ToPayloads(map[string]string{"reason": "db password rotated"})
	require.NoError(t, err)
	sealed, err := before.Encode(p.Payloads)
	require.NoError(t, err)
	assert.Equal(t, worker.EncodingEncrypted, string(sealed[0].Metadata["encoding"]))
	assert.Equal(t, "2026-q3", string(sealed[0].Metadata[worker.MetadataKeyID]))
	assert.NotContains(t, string(sealed[0].Data), "db password")

	// Rotation: the new key encrypts, the old one still decrypts.
	after, err := worker.ParseKeys(next+"\n"+old+"\n", "keys")
	require.NoError(t, err)
	assert.Equal(t, "2026-q4", after.KeyID())
	opened, err := after.Decode(sealed)
	require.NoError(t, err)
	assert.Equal(t, p.Payloads[0].Data, opened[0].Data)

	onlyNew, err := worker.ParseKeys(next, "keys")
	require.NoError(t, err)
	_, err = onlyNew.Decode(sealed)
	assert.ErrorContains(t, err, `encrypted with key "2026-q3"`)

	plain, err := onlyNew.Decode(p.Payloads)
	require.NoError(t, err, "unencrypted payloads (older runs) pass through")
	assert.Equal(t, p.Payloads[0].Data, plain[0].Data)
}

func TestCodecKeyErrorsNameTheLineAndTheFix(t *testing.T) {
	for text, want := range map[string]string{
		"":                 "holds no key: add an ID=BASE64 line (lifeboat codec-key ID makes one)",
		"k1":               "keys line 1: want ID=BASE64",
		"k1=c2hvcnQ=":      "keys line 1: key k1 must be 32 bytes in base64",
		"# comment\nk1=!!": "keys line 2: key k1 must be 32 bytes",
	} {
		_, err := worker.ParseKeys(text, "keys")
		assert.ErrorContains(t, err, want, "%q", text)
	}
}
