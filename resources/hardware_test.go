package resources

import (
	"regexp"
	"testing"
)

// TestHardwareLine checks the shape of PROTOCOL §1's hardware line on this
// machine, and that it is the same on every call.
func TestHardwareLine(t *testing.T) {
	line := Hardware()
	re := regexp.MustCompile(`^CPU: [^\n]+\. GPU: [^\n]+\. Memory: [0-9]+\. DriveSerial: [^\n]+\.$`)
	if !re.MatchString(line) {
		t.Fatalf("Hardware() = %q does not match %s", line, re)
	}
	if again := Hardware(); again != line {
		t.Fatalf("Hardware() changed between calls: %q then %q", line, again)
	}
	if m := regexp.MustCompile(`Memory: ([0-9]+)\.`).FindStringSubmatch(line); m == nil || m[1] == "0" {
		t.Errorf("Hardware() = %q: no memory size", line)
	}
}
