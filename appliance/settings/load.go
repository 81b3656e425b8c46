package settings

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"
)

//go:embed default.toml
var defaultFile []byte

// DefaultFile returns the commented settings file that a first start writes.
func DefaultFile() []byte { return bytes.Clone(defaultFile) }

// Load reads the settings file in dataDir. When the file does not exist it
// writes the commented default first, so a first start runs on the embedded
// default. The returned settings are validated.
func Load(dataDir string) (s *Settings, created bool, err error) {
	path := filepath.Join(dataDir, FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, false, fmt.Errorf("create data directory: %w", err)
		}
		if err := WriteFileAtomic(path, defaultFile, 0o640); err != nil {
			return nil, false, fmt.Errorf("write default settings: %w", err)
		}
		data, created = defaultFile, true
	} else if err != nil {
		return nil, false, fmt.Errorf("read settings: %w", err)
	}

	s, err = Parse(data)
	if err != nil {
		return nil, created, fmt.Errorf("%s: %w", path, err)
	}
	return s, created, nil
}

// Parse decodes and validates a settings file. Keys missing from the file
// keep their defaults; unknown keys are an error, because a misspelled key
// would otherwise be ignored silently.
func Parse(data []byte) (*Settings, error) {
	s := Default()
	md, err := toml.Decode(string(data), s)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) && perr.LastKey != "" {
			return nil, fmt.Errorf("%s (line %d): %s", perr.LastKey, perr.Position.Line, perr.Message)
		}
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("line %d: %s", perr.Position.Line, perr.Message)
		}
		return nil, err
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return nil, fmt.Errorf("unknown setting %q: check its spelling against the default file", undecoded[0].String())
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseOver decodes data on top of base and validates the result: keys the
// file does not name keep base's values rather than the defaults, so that
// importing part of a settings file changes only that part. An empty file
// is an error, because it would change nothing and is most likely a
// mistake.
func ParseOver(base *Settings, data []byte) (*Settings, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the settings file is empty")
	}
	current, err := base.Marshal()
	if err != nil {
		return nil, err
	}
	s := Default()
	if _, err := toml.Decode(string(current), s); err != nil {
		return nil, fmt.Errorf("copy the current settings: %w", err)
	}
	// Arrays of tables are appended to by the decoder, so the file's
	// interface section replaces the current one only when it has one.
	ifaces := s.Interfaces
	s.Interfaces = nil
	md, err := toml.Decode(string(data), s)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) && perr.LastKey != "" {
			return nil, fmt.Errorf("%s (line %d): %s", perr.LastKey, perr.Position.Line, perr.Message)
		}
		return nil, err
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return nil, fmt.Errorf("unknown setting %q: check its spelling against the default file", undecoded[0].String())
	}
	if !md.IsDefined("interface") {
		s.Interfaces = ifaces
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Marshal encodes settings as TOML without comments, for export and for
// saving edits made in the web setup.
func (s *Settings) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Save validates s and writes it to dataDir atomically.
func (s *Settings) Save(dataDir string) error {
	if err := s.Validate(); err != nil {
		return err
	}
	data, err := s.Marshal()
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dataDir, FileName), data, 0o640)
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it,
// renames it over path and syncs the directory, so that a crash leaves
// either the old file or the new one, never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())

	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
