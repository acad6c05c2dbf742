//go:build !unix

package testutil

import "time"

// ProcessCPU is zero where getrusage is missing: ReportCPU reports nothing.
func ProcessCPU() time.Duration { return 0 }
