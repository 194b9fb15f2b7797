package resources

import "log/slog"

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

// Reveal returns the secret itself, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }
