package resources

// Known returns the plaintext size of folder/name as last seen by an open
// on this device (kept in the cache's metadata), whether or not a login
// has happened: a name and its size are not secret, and the mount lists
// them before a login and while the CDN is out of reach. ok is false when
// no open has recorded a size (or it is 0).
func (s *Store) Known(folder, name string) (size int64, ok bool) {
	if CheckNames(folder, name) != nil {
		return 0, false
	}
	meta, cached := s.cache.Lookup(folder, name)
	if !cached || meta.PlainSize <= 0 {
		return 0, false
	}
	return meta.PlainSize, true
}
