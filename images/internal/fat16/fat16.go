// Package fat16 writes the boot partition of a Lambgate image: a FAT16 file
// system with one FAT copy, a fixed root directory and every file stored in
// consecutive clusters.
//
// gokrazy's runtime rewrites cmdline.txt in place to switch between root A
// and B, and its FAT reader (github.com/gokrazy/internal/fat) parses only
// this layout. It finds the root directory after the reserved sectors and
// one FAT, and it reads each file as one extent from its first cluster.
// The package only creates new file systems and never reads or modifies
// an existing one.
package fat16

import (
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

const (
	sectorSize     = 512
	reservedCount  = 1
	rootEntryCount = 512
	dirEntrySize   = 32

	// FAT16 needs between 4085 and 65524 clusters; outside that range
	// readers take the file system for FAT12 or FAT32.
	minClusters = 4085
	maxClusters = 65524

	attrVolumeID  = 0x08
	attrDirectory = 0x10
	attrArchive   = 0x20
	attrLongName  = 0x0f
)

// File is one regular file of the file system. Path uses slashes and no
// leading slash ("overlays/README"); parent directories are created as
// needed.
type File struct {
	Path string
	Data []byte
}

// Options are the fixed values of a file system. Fixing them makes the
// output depend only on the files, which keeps images reproducible.
type Options struct {
	// Size is the partition size in bytes, a multiple of 512.
	Size int64
	// HiddenSectors is the partition's first LBA, which the boot sector
	// records for firmware that reads it.
	HiddenSectors uint32
	// VolumeID is the serial number that the boot sector records.
	VolumeID uint32
	// Label is the volume label, at most 11 characters.
	Label string
	// ModTime is the modification time of every file and directory.
	ModTime time.Time
}

type node struct {
	path     string
	name     string
	isDir    bool
	data     []byte
	children []*node
	cluster  uint16
	clusters int
}

type geometry struct {
	totalSectors      uint32
	sectorsPerCluster uint32
	fatSectors        uint32
	rootSectors       uint32
	clusterCount      uint32
}

// Extent is where a file's content starts, in bytes from the start of the
// file system, and its size. Every file is one extent.
type Extent struct {
	Offset int64
	Size   int64
}

// Write creates the file system at offset off of w, which must read as
// zeros where nothing is written (a new sparse file does). It returns the
// extent of every non-empty regular file by path, for boot loaders that
// read files by sector number.
func Write(w io.WriterAt, off int64, opts Options, files []File) (map[string]Extent, error) {
	if opts.Size%sectorSize != 0 {
		return nil, fmt.Errorf("fat16: size %d is not a multiple of %d bytes", opts.Size, sectorSize)
	}
	if len(opts.Label) > 11 {
		return nil, fmt.Errorf("fat16: label %q is longer than 11 characters", opts.Label)
	}
	geo, err := computeGeometry(uint32(opts.Size / sectorSize))
	if err != nil {
		return nil, err
	}

	root, err := buildTree(files)
	if err != nil {
		return nil, err
	}

	// Clusters are handed out depth-first in name order, so every file and
	// directory occupies one run of consecutive clusters.
	clusterBytes := int(geo.sectorsPerCluster * sectorSize)
	next := uint32(2)
	var order []*node
	var assign func(n *node) error
	assign = func(n *node) error {
		for _, c := range n.children {
			size := len(c.data)
			if c.isDir {
				size = len(encodeDir(c, n, opts.ModTime, false)) // only the length is needed here
			}
			c.clusters = (size + clusterBytes - 1) / clusterBytes
			if c.clusters > 0 {
				if next+uint32(c.clusters) > geo.clusterCount+2 {
					return fmt.Errorf("fat16: files do not fit in %d bytes: enlarge the boot partition", opts.Size)
				}
				c.cluster = uint16(next)
				next += uint32(c.clusters)
				order = append(order, c)
			}
			if c.isDir {
				if err := assign(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := assign(root); err != nil {
		return nil, err
	}

	if err := writeAt(w, off, bootSector(geo, opts)); err != nil {
		return nil, err
	}

	fat := make([]byte, geo.fatSectors*sectorSize)
	binary.LittleEndian.PutUint16(fat[0:], 0xfff8)
	binary.LittleEndian.PutUint16(fat[2:], 0xffff)
	for _, n := range order {
		for i := 0; i < n.clusters; i++ {
			c := int(n.cluster) + i
			link := uint16(c + 1)
			if i == n.clusters-1 {
				link = 0xffff
			}
			binary.LittleEndian.PutUint16(fat[2*c:], link)
		}
	}
	fatOff := off + reservedCount*sectorSize
	if err := writeAt(w, fatOff, fat); err != nil {
		return nil, err
	}

	rootOff := fatOff + int64(geo.fatSectors)*sectorSize
	rootDir := encodeDir(root, nil, opts.ModTime, true)
	if opts.Label != "" {
		// fsck.vfat expects the boot sector's label in the root directory too.
		var label [11]byte
		copy(label[:], padRight(strings.ToUpper(opts.Label), 11))
		rootDir = append(shortEntry(label, attrVolumeID, 0, 0, opts.ModTime), rootDir...)
	}
	if len(rootDir) > rootEntryCount*dirEntrySize {
		return nil, fmt.Errorf("fat16: root directory needs %d entries, the maximum is %d",
			len(rootDir)/dirEntrySize, rootEntryCount)
	}
	if err := writeAt(w, rootOff, rootDir); err != nil {
		return nil, err
	}

	dataOff := rootOff + int64(geo.rootSectors)*sectorSize
	extents := map[string]Extent{}
	var parents = map[*node]*node{}
	var walk func(n *node)
	walk = func(n *node) {
		for _, c := range n.children {
			parents[c] = n
			if c.isDir {
				walk(c)
			}
		}
	}
	walk(root)
	for _, n := range order {
		content := n.data
		if n.isDir {
			parent := parents[n]
			if parent == root {
				parent = nil
			}
			content = encodeDir(n, parent, opts.ModTime, false)
		}
		at := dataOff + int64(n.cluster-2)*int64(clusterBytes)
		if err := writeAt(w, at, content); err != nil {
			return nil, err
		}
		if !n.isDir {
			extents[n.path] = Extent{Offset: at - off, Size: int64(len(n.data))}
		}
	}
	return extents, nil
}

func writeAt(w io.WriterAt, off int64, b []byte) error {
	if _, err := w.WriteAt(b, off); err != nil {
		return fmt.Errorf("fat16: write at byte %d: %w", off, err)
	}
	return nil
}

// computeGeometry picks the smallest cluster size that keeps the cluster
// count within FAT16's range, as small clusters waste the least space.
func computeGeometry(totalSectors uint32) (geometry, error) {
	rootSectors := uint32(rootEntryCount * dirEntrySize / sectorSize)
	for spc := uint32(1); spc <= 64; spc *= 2 {
		fatSectors := uint32(1)
		var clusters uint32
		for {
			used := reservedCount + fatSectors + rootSectors
			if used >= totalSectors {
				break
			}
			clusters = (totalSectors - used) / spc
			need := ((clusters+2)*2 + sectorSize - 1) / sectorSize
			if need <= fatSectors {
				break
			}
			fatSectors = need
		}
		if clusters > maxClusters {
			continue
		}
		if clusters < minClusters {
			break
		}
		return geometry{
			totalSectors:      totalSectors,
			sectorsPerCluster: spc,
			fatSectors:        fatSectors,
			rootSectors:       rootSectors,
			clusterCount:      clusters,
		}, nil
	}
	return geometry{}, fmt.Errorf("fat16: %d sectors do not give a FAT16 cluster count "+
		"(%d to %d clusters): use a partition between 4 MiB and 2 GiB", totalSectors, minClusters, maxClusters)
}

func bootSector(geo geometry, opts Options) []byte {
	b := make([]byte, sectorSize)
	// A jump over the BIOS parameter block to an endless loop: the
	// partition is never booted by a BIOS, but readers check the jump.
	copy(b[0:], []byte{0xeb, 0x3c, 0x90})
	copy(b[3:11], "LAMBGATE")

	// BIOS parameter block.
	le := binary.LittleEndian
	le.PutUint16(b[11:], sectorSize)
	b[13] = byte(geo.sectorsPerCluster)
	le.PutUint16(b[14:], reservedCount)
	b[16] = 1 // one FAT copy: gokrazy's runtime reader assumes it
	le.PutUint16(b[17:], rootEntryCount)
	if geo.totalSectors < 0x10000 {
		le.PutUint16(b[19:], uint16(geo.totalSectors))
	} else {
		le.PutUint32(b[32:], geo.totalSectors)
	}
	b[21] = 0xf8 // fixed disk
	le.PutUint16(b[22:], uint16(geo.fatSectors))
	le.PutUint16(b[24:], 32) // sectors per track: unused with LBA
	le.PutUint16(b[26:], 64) // heads: unused with LBA
	le.PutUint32(b[28:], opts.HiddenSectors)

	// Extended BIOS parameter block of FAT12 and FAT16.
	b[36] = 0x80 // drive number
	b[38] = 0x29 // extended boot signature: the next three fields are valid
	le.PutUint32(b[39:], opts.VolumeID)
	copy(b[43:54], padRight(strings.ToUpper(opts.Label), 11))
	copy(b[54:62], "FAT16   ")

	b[62] = 0xeb // jmp $
	b[63] = 0xfe
	b[510] = 0x55
	b[511] = 0xaa
	return b
}

func buildTree(files []File) (*node, error) {
	root := &node{isDir: true}
	dirs := map[string]*node{"": root}
	var mkdir func(p string) *node
	mkdir = func(p string) *node {
		if d, ok := dirs[p]; ok {
			return d
		}
		parent := mkdir(parentDir(p))
		d := &node{path: p, name: path.Base(p), isDir: true}
		parent.children = append(parent.children, d)
		dirs[p] = d
		return d
	}
	seen := map[string]bool{}
	for _, f := range files {
		p := f.Path
		if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p {
			return nil, fmt.Errorf("fat16: invalid path %q: use a clean relative path such as \"overlays/README\"", p)
		}
		if seen[p] {
			return nil, fmt.Errorf("fat16: duplicate path %q", p)
		}
		seen[p] = true
		parent := mkdir(parentDir(p))
		parent.children = append(parent.children, &node{path: p, name: path.Base(p), data: f.Data})
	}
	var sortTree func(n *node)
	sortTree = func(n *node) {
		sort.Slice(n.children, func(i, j int) bool { return n.children[i].name < n.children[j].name })
		for _, c := range n.children {
			if c.isDir {
				sortTree(c)
			}
		}
	}
	sortTree(root)
	return root, nil
}

func parentDir(p string) string {
	d := path.Dir(p)
	if d == "." {
		return ""
	}
	return d
}

func padRight(s string, n int) string {
	if len(s) >= n {
		return s[:n]
	}
	return s + strings.Repeat(" ", n-len(s))
}
