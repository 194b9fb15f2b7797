package control_test

import (
	"os"
	"testing"

	"github.com/azaion/loader/control/unlock/dockertest"
	"github.com/azaion/loader/resources/cdn/cdntest"
)

// TestMain shares one MinIO server among the package's full-stack tests
// and one private Docker engine among its unlock tests
// (unlock_http_test.go). Each starts only when a test first asks for it
// (cdntest.Shared, dockertest.Shared), and both stop after the last test.
// Add further harnesses here rather than writing another TestMain.
func TestMain(m *testing.M) {
	dockertest.SetMain()
	code := cdntest.Run(m)
	dockertest.Cleanup()
	os.Exit(code)
}
