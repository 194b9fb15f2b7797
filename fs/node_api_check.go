package fs

import fusefs "github.com/hanwen/go-fuse/v2/fs"

// The operations each node answers. Whatever is missing here go-fuse
// answers itself (ENOTSUP, ENOATTR and the like).
var (
	_ = (fusefs.NodeGetattrer)((*root)(nil))
	_ = (fusefs.NodeReaddirer)((*root)(nil))
	_ = (fusefs.NodeLookuper)((*root)(nil))
	_ = (fusefs.NodeStatfser)((*root)(nil))

	_ = (fusefs.NodeGetattrer)((*dir)(nil))
	_ = (fusefs.NodeReaddirer)((*dir)(nil))
	_ = (fusefs.NodeLookuper)((*dir)(nil))

	_ = (fusefs.NodeGetattrer)((*file)(nil))
	_ = (fusefs.NodeOpener)((*file)(nil))
	_ = (fusefs.NodeReader)((*file)(nil))

	// Refused with EROFS (readonly.go).
	_ = (fusefs.NodeSetattrer)((*root)(nil))
	_ = (fusefs.NodeSetxattrer)((*root)(nil))
	_ = (fusefs.NodeRemovexattrer)((*root)(nil))
	_ = (fusefs.NodeCreater)((*root)(nil))
	_ = (fusefs.NodeMkdirer)((*root)(nil))
	_ = (fusefs.NodeMknoder)((*root)(nil))
	_ = (fusefs.NodeLinker)((*root)(nil))
	_ = (fusefs.NodeSymlinker)((*root)(nil))
	_ = (fusefs.NodeUnlinker)((*root)(nil))
	_ = (fusefs.NodeRmdirer)((*root)(nil))
	_ = (fusefs.NodeRenamer)((*root)(nil))

	_ = (fusefs.NodeSetattrer)((*dir)(nil))
	_ = (fusefs.NodeSetxattrer)((*dir)(nil))
	_ = (fusefs.NodeRemovexattrer)((*dir)(nil))
	_ = (fusefs.NodeCreater)((*dir)(nil))
	_ = (fusefs.NodeMkdirer)((*dir)(nil))
	_ = (fusefs.NodeMknoder)((*dir)(nil))
	_ = (fusefs.NodeLinker)((*dir)(nil))
	_ = (fusefs.NodeSymlinker)((*dir)(nil))
	_ = (fusefs.NodeUnlinker)((*dir)(nil))
	_ = (fusefs.NodeRmdirer)((*dir)(nil))
	_ = (fusefs.NodeRenamer)((*dir)(nil))

	_ = (fusefs.NodeSetattrer)((*file)(nil))
	_ = (fusefs.NodeSetxattrer)((*file)(nil))
	_ = (fusefs.NodeRemovexattrer)((*file)(nil))
	_ = (fusefs.NodeWriter)((*file)(nil))
	_ = (fusefs.NodeAllocater)((*file)(nil))
)
