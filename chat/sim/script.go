package sim

// The script interpreter: one command per line (the package comment lists
// them). Exec runs one line, Run a whole script.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// maxRun bounds a "run" command: pacing, not a soak.
const maxRun = 10 * time.Second

// Run runs a script, line by line, and stops at the first failing line;
// the error names it.
func (s *Sim) Run(script string) error {
	for i, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s.logf("%d: %s", i+1, line)
		if err := s.Exec(line); err != nil {
			return fmt.Errorf("line %d %q: %w", i+1, line, err)
		}
	}
	return nil
}

// Exec runs one command.
func (s *Sim) Exec(line string) error {
	f := strings.Fields(line)
	if len(f) == 0 {
		return nil
	}
	cmd, args := f[0], f[1:]
	need := func(n int) error {
		if len(args) < n {
			return fmt.Errorf("%s: want at least %d arguments", cmd, n)
		}
		return nil
	}
	switch cmd {
	case "start":
		if err := need(1); err != nil {
			return err
		}
		return s.Start(args...)
	case "create", "join":
		want := 2
		if cmd == "create" {
			want = 3
		}
		if len(args) != want {
			return fmt.Errorf("%s: want %d arguments", cmd, want)
		}
		room, err := roomArg(args[1])
		if err != nil {
			return err
		}
		var mode hearsay.OrderMode
		if cmd == "create" {
			if mode, err = hearsay.ParseOrderMode(args[2]); err != nil {
				return err
			}
		}
		return s.JoinRoom(args[0], room, mode)
	case "send", "trysend":
		if err := need(2); err != nil {
			return err
		}
		room, err := roomArg(args[1])
		if err != nil {
			return err
		}
		retry := s.opts.Timeout
		if cmd == "trysend" {
			retry = 0
		}
		id, err := s.send(args[0], room, strings.Join(args[2:], " "), retry)
		if err != nil && cmd == "trysend" {
			s.logf("  not sent: %v", err)
			return nil
		}
		if err == nil {
			s.logf("  sent %s", s.rename(id.String()))
		}
		return err
	case "partition":
		var groups [][]string
		cur := []string{}
		for _, a := range args {
			if a == "|" {
				groups = append(groups, cur)
				cur = []string{}
				continue
			}
			cur = append(cur, a)
		}
		groups = append(groups, cur)
		if len(groups) < 2 {
			return errors.New("partition: want groups separated by |")
		}
		return s.Partition(groups...)
	case "cut":
		if len(args) != 3 || args[1] != "->" {
			return errors.New("cut: want \"cut a -> b\"")
		}
		return s.Cut(args[0], args[2])
	case "heal":
		return s.Heal()
	case "crash":
		if err := need(1); err != nil {
			return err
		}
		for _, name := range args {
			if err := s.Crash(name); err != nil {
				return err
			}
		}
		return nil
	case "restart":
		if err := need(1); err != nil {
			return err
		}
		for _, name := range args {
			if err := s.Restart(name); err != nil {
				return err
			}
		}
		return nil
	case "faults":
		fs, err := parseFaults(args)
		if err != nil {
			return err
		}
		s.SetFaults(fs)
		return nil
	case "run":
		if len(args) != 1 {
			return errors.New("run: want a duration")
		}
		d, err := time.ParseDuration(args[0])
		if err != nil || d < 0 || d > maxRun {
			return fmt.Errorf("run: want a duration up to %v", maxRun)
		}
		// Workload pacing: the peers keep running (anti-entropy,
		// failure detection) while nothing else happens. No check
		// depends on what happens meanwhile.
		t := time.NewTimer(d)
		<-t.C
		return nil
	case "check":
		return s.Check()
	case "checker":
		// checker strict | replayed-shown: see Options.ReplayedShown.
		if len(args) != 1 || (args[0] != "strict" && args[0] != "replayed-shown") {
			return errors.New("checker: want strict or replayed-shown")
		}
		s.opts.ReplayedShown = args[0] == "replayed-shown"
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func roomArg(a string) (string, error) {
	if !strings.HasPrefix(a, "#") || len(a) < 2 {
		return "", fmt.Errorf("room %q: want #name", a)
	}
	return a[1:], nil
}

// parseFaults reads "off" or key=value pairs: drop (0 to 1), delay and
// jitter (durations up to a minute).
func parseFaults(args []string) (transport.FaultSettings, error) {
	var fs transport.FaultSettings
	if len(args) == 1 && args[0] == "off" {
		return fs, nil
	}
	if len(args) == 0 {
		return fs, errors.New("faults: want off or drop=, delay=, jitter=")
	}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return fs, fmt.Errorf("faults: %q: want key=value", a)
		}
		switch k {
		case "drop":
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || !(r >= 0 && r <= 1) {
				return fs, fmt.Errorf("faults: drop %q: want 0 to 1", v)
			}
			fs.DropRatio = r
		case "delay", "jitter":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > time.Minute {
				return fs, fmt.Errorf("faults: %s %q: want a duration up to a minute", k, v)
			}
			if k == "delay" {
				fs.Delay = d
			} else {
				fs.Jitter = d
			}
		default:
			return fs, fmt.Errorf("faults: unknown key %q", k)
		}
	}
	return fs, nil
}
