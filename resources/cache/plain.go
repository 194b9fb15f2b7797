package cache

// SetPlainSize records the plaintext size of folder/name's version v in its
// sidecar, so that the name is listed with its size before a login and
// after a restart. It writes only when the entry holds v and the size is
// new to it; a disk that fails is logged, not returned: the size is a
// courtesy, never needed to read.
func (c *Cache) SetPlainSize(folder, name string, v Version, size int64) {
	if checkNames(folder, name) != nil || c.checkFolder(folder, false) != nil || size <= 0 {
		return
	}
	s := c.slot(folder, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur; e != nil && e.v == v {
		e.mu.Lock()
		same, disk := e.plain == size, e.disk
		e.plain = size
		e.mu.Unlock()
		if same || !disk {
			return
		}
		if err := e.writeSidecarLocked(); err != nil {
			e.diskError("write sidecar", err)
		}
		return
	}
	if s.cur != nil {
		return // another version holds the files
	}
	p := metaPath(folder, name)
	sc, err := readSidecar(c.root, p)
	if err != nil || sc.Version != v || sc.PlainSize == size {
		return
	}
	sc.PlainSize = size
	if err := writeSidecar(c.root, p, sc); err != nil {
		c.log.Warn("cache: cannot record a plaintext size", "folder", folder, "name", name, "err", err)
	}
}
