package worker

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Payload metadata written by the AES codec.
const (
	// EncodingEncrypted marks a payload the codec encrypted.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key that encrypted a payload, for rotation.
	MetadataKeyID = "encryption-key-id"
	// MetadataCipher names the cipher.
	MetadataCipher = "encryption-cipher"
	cipherName     = "AES256-GCM"
)

// CodecConfig enables payload encryption: workflow inputs, results,
// activity arguments, updates, signals, queries and memos are encrypted
// with AES-256-GCM before they leave the process, so the Temporal server
// stores ciphertext only. Search attributes stay readable (the UI's lists
// need them) and never hold secrets.
//
// Keys are lines `ID=BASE64` (32 random bytes each; `lifeboat codec-key ID`
// makes one). The first line encrypts; every line decrypts, so a rotation
// puts the new key first and keeps the old ones until their runs age out.
type CodecConfig struct {
	// KeyFile holds the key lines (LIFEBOAT_CODEC_KEY_FILE).
	KeyFile string `yaml:"keyFile"`
	// KeyEnv names an environment variable holding them (LIFEBOAT_CODEC_KEY_ENV).
	KeyEnv string `yaml:"keyEnv"`
}

// Enabled says whether a key source is configured.
func (c CodecConfig) Enabled() bool { return c.KeyFile != "" || c.KeyEnv != "" }

// Codec reads the keys and returns the codec (nil when not enabled).
func (c CodecConfig) Codec(getenv func(string) string) (*AESCodec, error) {
	var text, where string
	switch {
	case c.KeyFile != "":
		b, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("codec.keyFile: %w", err)
		}
		text, where = string(b), "codec.keyFile "+c.KeyFile
	case c.KeyEnv != "":
		text, where = getenv(c.KeyEnv), "environment variable "+c.KeyEnv+" (codec.keyEnv)"
		if text == "" {
			return nil, fmt.Errorf("%s is empty: set it to ID=BASE64 key lines (lifeboat codec-key ID makes one)", where)
		}
	default:
		return nil, nil
	}
	return ParseKeys(text, where)
}

// AESCodec is a converter.PayloadCodec encrypting with AES-256-GCM.
type AESCodec struct {
	current string
	keys    map[string]cipher.AEAD
}

// ParseKeys builds a codec from `ID=BASE64` lines (the first one encrypts);
// where names their source in errors.
func ParseKeys(text, where string) (*AESCodec, error) {
	c := &AESCodec{keys: map[string]cipher.AEAD{}}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, "=")
		if !ok || id == "" {
			return nil, fmt.Errorf("%s line %d: want ID=BASE64 (lifeboat codec-key ID makes one)", where, i+1)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%s line %d: key %s must be 32 bytes in base64 (lifeboat codec-key %s makes one)", where, i+1, id, id)
		}
		block, _ := aes.NewCipher(key)
		aead, _ := cipher.NewGCM(block)
		if _, dup := c.keys[id]; dup {
			return nil, fmt.Errorf("%s line %d: key id %s appears twice", where, i+1, id)
		}
		c.keys[id] = aead
		if c.current == "" {
			c.current = id
		}
	}
	if c.current == "" {
		return nil, fmt.Errorf("%s holds no key: add an ID=BASE64 line (lifeboat codec-key ID makes one)", where)
	}
	return c, nil
}

// NewKeyLine returns a fresh `ID=BASE64` key line.
func NewKeyLine(id string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return id + "=" + base64.StdEncoding.EncodeToString(key), nil
}

// KeyID is the id of the key that encrypts.
func (c *AESCodec) KeyID() string { return c.current }

// Encode encrypts each payload whole (data and metadata).
func (c *AESCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.keys[c.current]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(c.current),
				MetadataCipher:             []byte(cipherName),
			},
			Data: aead.Seal(nonce, nonce, plain, nil),
		}
	}
	return out, nil
}

// Decode decrypts the payloads it encrypted and passes others through.
func (c *AESCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.keys[id]
		if !ok {
			return nil, fmt.Errorf("payload encrypted with key %q, which this process does not have: add its line to the codec keys (keep old keys after a rotation)", id)
		}
		data := p.GetData()
		if len(data) < aead.NonceSize() {
			return nil, errors.New("encrypted payload too short")
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], nil)
		if err != nil {
			return nil, fmt.Errorf("decrypting a payload with key %q: %w", id, err)
		}
		var dec commonpb.Payload
		if err := proto.Unmarshal(plain, &dec); err != nil {
			return nil, err
		}
		out[i] = &dec
	}
	return out, nil
}

// DataConverter is the data converter of clients and workers: the default
// one, wrapped in the codec when it is enabled.
func (c Config) DataConverter() (converter.DataConverter, error) {
	codec, err := c.Codec.Codec(os.Getenv)
	if err != nil || codec == nil {
		return converter.GetDefaultDataConverter(), err
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), codec), nil
}

// CodecServer is the HTTP codec server the Temporal UI calls (POST /encode,
// POST /decode) to show decrypted payloads to the people allowed to see
// them: only the UI's origin is allowed (CORS), and when token is not empty
// each request must carry `Authorization: Bearer <token>`.
func CodecServer(codec *AESCodec, uiOrigin, token string) http.Handler {
	codecs := converter.NewPayloadCodecHTTPHandler(codec)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", uiOrigin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Access-Control-Allow-Headers", "Content-Type,X-Namespace,Authorization")
		h.Set("Access-Control-Allow-Methods", "POST,OPTIONS")
		h.Set("Vary", "Origin")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) != 1 {
			http.Error(w, "unauthorized: this codec server needs Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		codecs.ServeHTTP(w, r)
	})
}
