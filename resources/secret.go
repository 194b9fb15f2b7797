package resources

import (
	"fmt"
	"io"
	"log/slog"
)

// Secret is a string that never shows in logs or formatted output: passwords,
// tokens, keys and S3 secrets are held as Secret so that a log line cannot
// leak one by accident.
type Secret string

// String redacts.
func (Secret) String() string { return "[redacted]" }

// GoString redacts under %#v.
func (Secret) GoString() string { return "[redacted]" }

// LogValue redacts under log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Format redacts under every fmt verb, %d and %x included.
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, "[redacted]") }

// MarshalJSON redacts in JSON, as slog's JSON handler writes structs.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Reveal returns the secret itself, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }
