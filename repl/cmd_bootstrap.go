package repl

// /bootstrap: the bootstrap data service by hand (cli-chat's flow). The
// host renews this peer's lease by itself; these commands are for
// experiments and administration.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func cmdBootstrap() *Command {
	withBS := func(run func(ctx context.Context, r *REPL, bs Bootstrap, inv *Invocation) error) func(context.Context, *REPL, *Invocation) error {
		return func(ctx context.Context, r *REPL, inv *Invocation) error {
			if r.cfg.Bootstrap == nil {
				return errNoBootstrap
			}
			ctx, cancel := context.WithTimeout(ctx, r.cfg.CommandTimeout)
			defer cancel()
			return run(ctx, r, r.cfg.Bootstrap, inv)
		}
	}
	return &Command{
		Name: "bootstrap", Aliases: []string{"bs"},
		Summary: "the bootstrap data service: join, leave, list, refill, reset, config",
		Sub: []*Command{
			{
				Name: "join", MaxArgs: 0,
				Summary: "register this peer as a first contact",
				Run: withBS(func(ctx context.Context, r *REPL, bs Bootstrap, _ *Invocation) error {
					c, err := r.selfContact()
					if err != nil {
						return err
					}
					res, err := bs.Join(ctx, c)
					if err != nil {
						return fmt.Errorf("bootstrap join: %w", err)
					}
					if !res.Stored {
						// A failed command, so a script stops (exit 1).
						return errors.New(describeJoin(res, "join"))
					}
					r.Printf("%s", describeJoin(res, "join"))
					return nil
				}),
			},
			{
				Name: "refill", MaxArgs: 0,
				Summary: "offer this peer with cli-chat's refill rule (replaces the newest entry)",
				Run: withBS(func(ctx context.Context, r *REPL, bs Bootstrap, _ *Invocation) error {
					c, err := r.selfContact()
					if err != nil {
						return err
					}
					res, err := bs.Refill(ctx, c)
					if err != nil {
						return fmt.Errorf("bootstrap refill: %w", err)
					}
					if !res.Stored {
						// A failed command, so a script stops (exit 1).
						return errors.New(describeJoin(res, "refill"))
					}
					r.Printf("%s", describeJoin(res, "refill"))
					return nil
				}),
			},
			{
				Name: "leave", MaxArgs: 0,
				Summary: "remove this peer from the service",
				Run: withBS(func(ctx context.Context, r *REPL, bs Bootstrap, _ *Invocation) error {
					if err := bs.Leave(ctx, r.cfg.Peer.ID()); err != nil {
						return fmt.Errorf("bootstrap leave: %w", err)
					}
					r.Printf("left the bootstrap service")
					return nil
				}),
			},
			{
				Name: "list", Aliases: []string{"ls"}, Args: "[N]", MaxArgs: 1,
				Summary: "list live contacts (at most N)",
				Run: withBS(func(ctx context.Context, r *REPL, bs Bootstrap, inv *Invocation) error {
					n := 0
					if len(inv.Args) == 1 {
						v, err := strconv.Atoi(inv.Args[0])
						if err != nil || v < 0 {
							return usagef("N must be a whole number ≥ 0, not %q", Sanitize(inv.Args[0]))
						}
						n = v
					}
					cs, err := bs.List(ctx, n)
					if err != nil {
						return fmt.Errorf("bootstrap list: %w", err)
					}
					if len(cs) == 0 {
						r.Printf("no contacts")
						return nil
					}
					var b strings.Builder
					tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NICK\tADDRESS\tSINCE\tEXPIRES\tID")
					for _, c := range cs {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", dash(Sanitize(c.Nick)), dash(Sanitize(c.Addr)),
							fmtTime(c.Since, r.cfg.Location), fmtTime(c.Expires, r.cfg.Location), Sanitize(c.ID))
					}
					_ = tw.Flush()
					r.Printf("%s\n%s", plural(len(cs), "contact"), strings.TrimRight(b.String(), "\n"))
					return nil
				}),
			},
			{
				Name: "reset", MaxArgs: 0,
				Summary: "remove every contact (admin)",
				Run: withBS(func(ctx context.Context, r *REPL, bs Bootstrap, _ *Invocation) error {
					n, err := bs.Reset(ctx)
					if err != nil {
						return fmt.Errorf("bootstrap reset: %w", err)
					}
					r.Printf("removed %s", plural(n, "contact"))
					return nil
				}),
			},
			{
				Name: "config", Args: "[max_peers=N] [min_refill_candidates=N] [lease_ttl=DURATION]", MaxArgs: 3,
				Summary: "show or change the service configuration (changes need the admin token)",
				Complete: func(_ *REPL, args []string, _ string) []Suggestion {
					var out []Suggestion
					for _, k := range []string{"max_peers=", "min_refill_candidates=", "lease_ttl="} {
						used := false
						for _, a := range args {
							used = used || strings.HasPrefix(a, k)
						}
						if !used {
							out = append(out, Suggestion{Text: k})
						}
					}
					return out
				},
				Run: withBS(func(ctx context.Context, r *REPL, bs Bootstrap, inv *Invocation) error {
					var (
						cfg BootstrapConfig
						err error
					)
					if len(inv.Args) == 0 {
						cfg, err = bs.Config(ctx)
					} else {
						u, perr := parseBootstrapUpdate(inv.Args)
						if perr != nil {
							return perr
						}
						cfg, err = bs.SetConfig(ctx, u)
					}
					if err != nil {
						return fmt.Errorf("bootstrap config: %w", err)
					}
					r.Printf("max_peers=%d min_refill_candidates=%d lease_ttl=%v", cfg.MaxPeers, cfg.MinRefillCandidates, cfg.LeaseTTL)
					return nil
				}),
			},
		},
	}
}

// parseBootstrapUpdate reads KEY=VALUE arguments.
func parseBootstrapUpdate(args []string) (BootstrapConfigUpdate, error) {
	var u BootstrapConfigUpdate
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return u, usagef("%q: want KEY=VALUE", Sanitize(a))
		}
		switch k {
		case "max_peers", "min_refill_candidates":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return u, usagef("%s must be a whole number > 0, not %q", k, Sanitize(v))
			}
			if k == "max_peers" {
				u.MaxPeers = &n
			} else {
				u.MinRefillCandidates = &n
			}
		case "lease_ttl":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return u, usagef("lease_ttl must be a duration such as 60s, not %q", Sanitize(v))
			}
			u.LeaseTTL = &d
		default:
			return u, usagef("unknown setting %q", Sanitize(k))
		}
	}
	return u, nil
}

// selfContact is this peer's bootstrap entry.
func (r *REPL) selfContact() (Contact, error) {
	p := r.cfg.Peer
	addr := p.AdvertiseAddr()
	if addr == "" {
		return Contact{}, errors.New("memberlist is not running, so there is no address to register (use /ml start first)")
	}
	return Contact{ID: p.ID(), Nick: p.Nick(), Addr: addr}, nil
}

func describeJoin(res JoinResult, op string) string {
	switch {
	case res.Renewed:
		return fmt.Sprintf("bootstrap %s: lease renewed (%s stored)", op, plural(res.NumPeers, "contact"))
	case res.Stored && res.Replaced != "":
		return fmt.Sprintf("bootstrap %s: stored, replacing %s (%s stored)", op, Sanitize(res.Replaced), plural(res.NumPeers, "contact"))
	case res.Stored:
		return fmt.Sprintf("bootstrap %s: stored (%s stored)", op, plural(res.NumPeers, "contact"))
	default:
		return fmt.Sprintf("bootstrap %s: not stored, the service keeps its %s", op, plural(res.NumPeers, "current contact"))
	}
}

func fmtTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format("15:04:05")
}
