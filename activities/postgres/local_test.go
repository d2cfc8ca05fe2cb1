package postgres

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A tool gets the connection string without its password (that goes to
// PGPASSWORD), every other setting kept.
func TestWithoutPasswordKeepsEverythingElse(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://app:s3cr%40t@db.example:5433/cases?sslmode=verify-full&sslrootcert=/ca.pem": "postgres://app@db.example:5433/cases?sslmode=verify-full&sslrootcert=%2Fca.pem",
		"postgresql://app@db/cases?password=s3cret&sslmode=require":                             "postgresql://app@db/cases?sslmode=require",
		"host=db port=5433 user=app password='s3 cr\\'et' sslmode=verify-full":                  "host=db port=5433 user=app sslmode=verify-full",
		"password=s3cret host=db": "host=db",
	} {
		got := withoutPassword(in)
		assert.Equal(t, want, got, in)
		assert.NotContains(t, got, "s3c")
	}
}
