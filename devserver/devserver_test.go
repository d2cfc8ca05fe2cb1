package devserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A dev server that dies while starting is reported at once, with what it
// said, instead of after a minute of dialling a port nobody listens on.
func TestLaunchReportsAServerThatExitedWhileStarting(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "temporal")
	script := "#!/bin/sh\necho 'unable to start: listen tcp 127.0.0.1:7233: bind: address already in use' >&2\nexit 3\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	_, err := launch(context.Background(), bin, Options{Log: &log})
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("want a StartError, got %v", err)
	}
	if !se.Exited || !strings.Contains(se.Error(), "exited while starting (exit status 3)") {
		t.Errorf("the error does not say the server exited: %v", se)
	}
	if !strings.Contains(se.Error(), "address already in use") {
		t.Errorf("the error does not carry the server's output: %v", se)
	}
	if !strings.Contains(log.String(), "address already in use") {
		t.Errorf("the server's output did not reach Options.Log: %q", log.String())
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	var b tailBuffer
	for i := 0; i < 3000; i++ {
		_, _ = b.Write([]byte("0123456789\n"))
	}
	_, _ = b.Write([]byte("the last line\n"))
	s := b.String()
	if len(s) != tailBytes || !strings.HasSuffix(s, "the last line\n") {
		t.Errorf("kept %d bytes ending %q", len(s), s[len(s)-20:])
	}
}
