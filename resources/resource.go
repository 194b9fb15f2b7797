package resources

// Resource is one version of a resource, opened: its exact plaintext size
// and a random-access reader over its plaintext.
type Resource struct {
	Folder, Name string
	// Version changes whenever the bytes do. Every upload encrypts with a
	// fresh IV, so the small part's hash alone tells two versions apart.
	Version string
	*Reader
}
