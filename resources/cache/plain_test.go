package cache

import "testing"

// TestPlainSizeKept: the plaintext size recorded for a version survives a
// restart of the cache, and is not given to another version of the name.
func TestPlainSizeKept(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	r := newResource(3*cs + 100)
	if _, err := c.Part("f", "m.bin", r.v, r.key, &memOrigin{data: r.big}); err != nil {
		t.Fatal(err)
	}
	c.SetPlainSize("f", "m.bin", r.v, 12345)
	c.Close()

	c = open(t, dir)
	if m, ok := c.Lookup("f", "m.bin"); !ok || m.PlainSize != 12345 {
		t.Fatalf("after a restart: %+v, %v; want plain size 12345", m.PlainSize, ok)
	}
	other := newResource(cs)
	c.SetPlainSize("f", "m.bin", other.v, 999) // not the version on disk
	if m, _ := c.Lookup("f", "m.bin"); m.PlainSize != 12345 {
		t.Fatalf("another version's size was recorded: %d", m.PlainSize)
	}
	if _, err := c.Part("f", "m.bin", other.v, other.key, &memOrigin{data: other.big}); err != nil {
		t.Fatal(err)
	}
	if m, _ := c.Lookup("f", "m.bin"); m.PlainSize != 0 {
		t.Fatalf("a new version kept the old one's size: %d", m.PlainSize)
	}
}
