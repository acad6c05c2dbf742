package admin

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"yubin/store"
)

// ParseQuota parses a quota as the CLI accepts it: a number of bytes
// ("1073741824"), or a number with a unit K, M, G or T — always powers of
// 1024, optionally followed by "iB" or "B", any case: "500M", "1G", "1.5GiB",
// "2tb". "0", "unlimited" and "none" mean no limit (0).
func ParseQuota(s string) (int64, error) {
	in := s
	s = strings.ToLower(strings.TrimSpace(s))
	bad := func(why string) (int64, error) {
		return 0, errorf(store.ErrInvalid, "invalid quota %q: %s", in, why)
	}
	switch s {
	case "":
		return bad("empty")
	case "unlimited", "none":
		return 0, nil
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		if strings.HasPrefix(s, "-") {
			return bad("cannot be negative (0 = unlimited)")
		}
		return bad("want bytes or a size like 500M, 1G, 2.5G (0 = unlimited)")
	}
	mult, ok := quotaUnits[unit]
	if !ok {
		return bad(fmt.Sprintf("unknown unit %q (want K, M, G or T)", unit))
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return bad("too large")
		}
		return n * mult, nil
	}
	if mult == 1 {
		return bad("a number of bytes must be whole")
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return bad("not a number")
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return bad("too large")
	}
	return int64(math.Round(v)), nil
}

var quotaUnits = func() map[string]int64 {
	m := map[string]int64{"": 1, "b": 1}
	for i, p := range []string{"k", "m", "g", "t"} {
		v := int64(1) << (10 * (i + 1))
		for _, suf := range []string{"", "b", "i", "ib"} {
			m[p+suf] = v
		}
	}
	return m
}()

// FormatBytes writes n in binary units with one decimal: "512 B",
// "12.3 MiB", "1.0 GiB".
func FormatBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / 1024
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	// Rounding can turn 1023.96 KiB into "1024.0 KiB"; move up a unit then.
	if v >= 1023.95 && u < len(units)-1 {
		v /= 1024
		u++
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}

// FormatQuota is FormatBytes, with 0 written as "unlimited".
func FormatQuota(q int64) string {
	if q == 0 {
		return "unlimited"
	}
	return FormatBytes(q)
}

// FormatUsage writes usage against a quota: "12.3 MiB of 1.0 GiB (1%)",
// or "12.3 MiB (no quota)" when the quota is 0.
func FormatUsage(used, quota int64) string {
	if quota == 0 {
		return FormatBytes(used) + " (no quota)"
	}
	pct := float64(used) * 100 / float64(quota)
	return fmt.Sprintf("%s of %s (%d%%)", FormatBytes(used), FormatBytes(quota), int64(pct))
}
