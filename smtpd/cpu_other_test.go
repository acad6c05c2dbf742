//go:build !unix

package smtpd

import "time"

// processCPU is zero where getrusage is missing: no cpu-ns/msg.
func processCPU() time.Duration { return 0 }
