package control_test

import (
	"testing"

	"github.com/azaion/loader/resources/cdn/cdntest"
)

// TestMain shares one MinIO server among the package's full-stack tests.
func TestMain(m *testing.M) { cdntest.Main(m) }
