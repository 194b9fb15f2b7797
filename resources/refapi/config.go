package refapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// User is one account of the reference API.
type User struct {
	ID       string `yaml:"id"`
	Email    string `yaml:"email"`
	Password string `yaml:"password"`
	Role     string `yaml:"role"`
}

// File is a stored file that New seeds, e.g. cdn.yaml in the empty folder.
type File struct {
	Folder, Name string
	Data         []byte
}

// Config is what New needs.
type Config struct {
	Users []User
	// DataDir holds the stored files as <DataDir>/<folder>/<name>; the
	// empty folder is <DataDir>/.root, a name no folder can have.
	DataDir string
	// SigningKey signs the HS256 tokens; a random key when empty.
	SigningKey []byte
	// TokenTTL is a token's lifetime; 1h when zero.
	TokenTTL time.Duration
	// KeyFragment is the body of GET /binary-split/key-fragment.
	KeyFragment []byte
	// MaxUpload bounds an upload's request body; 64 MiB when zero.
	MaxUpload int64
	// UploadRoles, when not empty, are the only roles allowed to upload;
	// other users get 403. Empty: every user may upload.
	UploadRoles []string
	// Files are stored when the server starts (overwriting DataDir's copy).
	Files  []File
	Logger *slog.Logger
	// Now is the clock for tokens; time.Now when nil.
	Now func() time.Time
}

// fileConfig is the YAML file of the azaion-resource-api binary. Relative
// paths are relative to the file's directory.
type fileConfig struct {
	// Users are the accounts.
	Users []User `yaml:"users"`
	// DataDir holds the stored files; required.
	DataDir string `yaml:"data_dir"`
	// SigningKey or SigningKeyFile (not both) is the HS256 key; random when both are absent.
	SigningKey     string `yaml:"signing_key"`
	SigningKeyFile string `yaml:"signing_key_file"`
	// TokenTTL is a token's lifetime, e.g. "1h".
	TokenTTL time.Duration `yaml:"token_ttl"`
	// KeyFragmentFile holds the key fragment bytes.
	KeyFragmentFile string `yaml:"key_fragment_file"`
	// MaxUpload bounds an upload in bytes.
	MaxUpload int64 `yaml:"max_upload"`
	// UploadRoles limits uploads to these roles.
	UploadRoles []string `yaml:"upload_roles"`
	// CDNYAMLFile is stored as cdn.yaml in the empty folder.
	CDNYAMLFile string `yaml:"cdn_yaml_file"`
	// Files are more files to store at start.
	Files []struct {
		Folder string `yaml:"folder"`
		Name   string `yaml:"name"`
		Path   string `yaml:"path"`
	} `yaml:"files"`
}

// maxConfigFile bounds the config file and every file it names.
const maxConfigFile = 64 << 20

// LoadConfig reads the binary's YAML config. Unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	raw, err := readBounded(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var fc fileConfig
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	cfg := Config{
		Users:       fc.Users,
		DataDir:     rel(fc.DataDir),
		TokenTTL:    fc.TokenTTL,
		MaxUpload:   fc.MaxUpload,
		UploadRoles: fc.UploadRoles,
	}
	if cfg.DataDir == "" {
		return Config{}, fmt.Errorf("config %s: data_dir is required", path)
	}
	switch {
	case fc.SigningKey != "" && fc.SigningKeyFile != "":
		return Config{}, fmt.Errorf("config %s: signing_key and signing_key_file are exclusive", path)
	case fc.SigningKey != "":
		cfg.SigningKey = []byte(fc.SigningKey)
	case fc.SigningKeyFile != "":
		if cfg.SigningKey, err = readBounded(rel(fc.SigningKeyFile)); err != nil {
			return Config{}, fmt.Errorf("config %s: signing key: %w", path, err)
		}
	}
	if fc.KeyFragmentFile != "" {
		if cfg.KeyFragment, err = readBounded(rel(fc.KeyFragmentFile)); err != nil {
			return Config{}, fmt.Errorf("config %s: key fragment: %w", path, err)
		}
	}
	if fc.CDNYAMLFile != "" {
		data, err := readBounded(rel(fc.CDNYAMLFile))
		if err != nil {
			return Config{}, fmt.Errorf("config %s: cdn yaml: %w", path, err)
		}
		cfg.Files = append(cfg.Files, File{Folder: "", Name: "cdn.yaml", Data: data})
	}
	for _, f := range fc.Files {
		data, err := readBounded(rel(f.Path))
		if err != nil {
			return Config{}, fmt.Errorf("config %s: file %s/%s: %w", path, f.Folder, f.Name, err)
		}
		cfg.Files = append(cfg.Files, File{Folder: f.Folder, Name: f.Name, Data: data})
	}
	return cfg, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, maxConfigFile)
	}
	return data, nil
}
