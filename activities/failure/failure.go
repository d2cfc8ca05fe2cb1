// Package failure reads action errors for people.
package failure

import (
	"errors"

	"go.temporal.io/sdk/temporal"
)

// Message is an error's message without the SDK's decoration (its type and
// retryability): what a check, a refusal or an evidence line shows.
func Message(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	return err.Error()
}
