// Package resources owns the Azaion resource protocol: the envelope and its
// keys, the big/small split, resource names, the device's hardware line, the
// random-access decrypting reader, and the Store that the mount and the
// control API both read and write resources through.
//
// The Resource API client, the CDN client, the local cache and the reference
// Resource API server live in sub-packages; each has one job and none of them
// knows about the others. The Store wires them together.
package resources
