package config

import (
	"fmt"
	"strconv"
	"strings"

	"graphuserstimer/internal/customhandler"
)

// ncrontabFields are the six fields of an NCRONTAB expression, in order,
// with their bounds and, for month and day of week, the names they accept.
var ncrontabFields = [6]struct {
	name     string
	min, max int
	names    []string // names[k] stands for min+k
}{
	{name: "second", min: 0, max: 59},
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day-of-week", min: 0, max: 6, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
}

// CheckSchedule accepts what the timer trigger accepts: a 6-field NCRONTAB
// expression ({second} {minute} {hour} {day} {month} {day-of-week}, each
// field a list of *, values, ranges and /steps) or a TimeSpan such as
// 01:00:00. The 5-field cron of most tools is refused, as the host refuses
// it.
func CheckSchedule(s string) error {
	if strings.Contains(s, ":") {
		if d, err := customhandler.ParseTimeSpan(s); err != nil || d <= 0 {
			return fmt.Errorf("%q is not a TimeSpan such as 01:00:00", s)
		}
		return nil
	}
	fields := strings.Fields(s)
	if len(fields) != 6 {
		return fmt.Errorf("%q has %d fields: want a 6-field NCRONTAB expression {second} {minute} {hour} {day} {month} {day-of-week}, such as 0 0 * * * * (hourly), or a TimeSpan such as 01:00:00", s, len(fields))
	}
	for i, f := range fields {
		for item := range strings.SplitSeq(f, ",") {
			if err := checkCronItem(i, item); err != nil {
				return fmt.Errorf("%q: the %s field %q: %w", s, ncrontabFields[i].name, f, err)
			}
		}
	}
	return nil
}

// checkCronItem checks one item of field i: *, a value or a range, with an
// optional /step.
func checkCronItem(i int, item string) error {
	spec := ncrontabFields[i]
	rng, step, hasStep := strings.Cut(item, "/")
	if hasStep {
		n, err := strconv.Atoi(step)
		if err != nil || n < 1 || n > spec.max-spec.min+1 || strings.TrimLeft(step, "0123456789") != "" {
			return fmt.Errorf("step %q is not a whole number from 1 to %d", step, spec.max-spec.min+1)
		}
	}
	if rng == "*" {
		return nil
	}
	lo, hi, isRange := strings.Cut(rng, "-")
	a, err := cronValue(i, lo)
	if err != nil {
		return err
	}
	if !isRange {
		return nil
	}
	b, err := cronValue(i, hi)
	if err != nil {
		return err
	}
	if b < a {
		return fmt.Errorf("range %q runs backwards", rng)
	}
	return nil
}

// cronValue reads one value of field i, a number or a name.
func cronValue(i int, s string) (int, error) {
	spec := ncrontabFields[i]
	for k, name := range spec.names {
		if strings.EqualFold(s, name) {
			return spec.min + k, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a %s", s, spec.name)
	}
	if n < spec.min || n > spec.max {
		return 0, fmt.Errorf("%d is outside %d-%d", n, spec.min, spec.max)
	}
	return n, nil
}
