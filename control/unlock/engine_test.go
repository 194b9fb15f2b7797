package unlock

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/azaion/loader/control/unlock/dockertest"
)

// The package's tests share one private Docker engine (dockertest), started
// by the first test that needs it and reached through DOCKER_HOST. TMPDIR is
// pointed at an empty private directory, so that a test can tell that
// nothing was left in it.
var (
	eng     *dockertest.Engine
	tmpDir  string // the tests' TMPDIR
	workDir string // where tests put archives
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "unlock-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tmpDir, workDir = filepath.Join(dir, "tmp"), filepath.Join(dir, "work")
	for _, d := range []string{tmpDir, workDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	os.Setenv("TMPDIR", tmpDir)
	dockertest.SetMain()
	defer dockertest.Cleanup()
	return m.Run()
}

// docker runs the docker CLI against the private engine, bounded.
func docker(stdin []byte, args ...string) ([]byte, error) {
	return eng.Docker(stdin, args...)
}
