package resources

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	long := strings.Repeat("a", 200) // PROTOCOL §2: 1..200 bytes
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"model.onnx", true},
		{"model.onnx.big", true},
		{"A-Z_a-z.0-9", true},
		{"-", true},
		{"_hidden", true},
		{"x.", true},
		{"x..y", true}, // a plain file name: no '/', cannot climb
		{long, true},
		{long + "a", false},
		{strings.Repeat("é", 100), false},
		{"", false},
		{".", false},
		{"..", false},
		{".x", false},
		{"...", false},
		{"a/b", false},
		{"/", false},
		{"/etc", false},
		{"a\\b", false},
		{"..%2f", false},
		{"%2e%2e", false},
		{"a%00", false},
		{"a\x00", false},
		{"\x00", false},
		{"a\x00b", false},
		{"a b", false},
		{" a", false},
		{"a\n", false},
		{"a:b", false},
		{"*", false},
		{"~", false},
		{"модель", false},
		{"café", false},
		{"\xff", false},
		{"ａ", false}, // full-width a
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestValidBucket(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"abc", true},
		{"azaion", true},
		{"models-v2.prod", true},
		{"012", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"ab", false},
		{"a", false},
		{"", false},
		{"Models", false},
		{"ABC", false},
		{"a_b", false},
		{".abc", false},
		{"abc/", false},
		{"a/bc", false},
		{"ab\x00", false},
		{"%2e%2e", false},
		{"ünï", false},
	} {
		if got := ValidBucket(tc.name); got != tc.ok {
			t.Errorf("ValidBucket(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestCheckNames(t *testing.T) {
	if err := CheckNames("models", "yolo.onnx"); err != nil {
		t.Fatalf("CheckNames(models, yolo.onnx) = %v", err)
	}
	for _, tc := range []struct{ folder, name, part string }{
		{"", "x", "folder"},
		{"..", "x", "folder"},
		{"a/b", "x", "folder"},
		{"models", "", "name"},
		{"models", "..", "name"},
		{"models", "../../etc/passwd", "name"},
		{"models", "a\x00b", "name"},
		{"..", "..", "folder"},
	} {
		err := CheckNames(tc.folder, tc.name)
		if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), tc.part) {
			t.Errorf("CheckNames(%q, %q) = %v; want ErrBadName naming the %s", tc.folder, tc.name, err, tc.part)
		}
	}
	// A huge name is clipped in the error message.
	err := CheckNames("models", strings.Repeat("x/", 5000))
	if !errors.Is(err, ErrBadName) || len(err.Error()) > 120 {
		t.Errorf("huge name: error of %d bytes: %.200v", len(err.Error()), err)
	}
}
