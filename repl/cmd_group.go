package repl

// Group commands: /who, /members, /health, /ping, /kv, /stats, /config and
// the --manual lifecycle commands /ml.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hearsay-chat/hearsay"
)

// maxConfigBytes bounds a memberlist configuration file.
const maxConfigBytes = 1 << 20

func cmdWho() *Command {
	return &Command{
		Name: "who", MaxArgs: 0,
		Summary: "list the nicks of live members",
		Run: func(_ context.Context, r *REPL, _ *Invocation) error {
			// After /ml leave or /ml shutdown memberlist no longer updates
			// the view, so the others would stay listed as alive.
			if why := r.outOfGroup(); why != "" {
				r.Printf("%s: no members to list", why)
				return nil
			}
			nicks := r.nicks(true)
			r.Printf("%d in the group: %s", len(nicks), strings.Join(nicks, ", "))
			return nil
		},
	}
}

func cmdMembers() *Command {
	return &Command{
		Name: "members", MaxArgs: 0,
		Summary: "memberlist view: state and addresses of every member",
		Run: func(_ context.Context, r *REPL, _ *Invocation) error {
			ms := r.cfg.Peer.Members()
			sort.Slice(ms, func(i, j int) bool {
				if ms[i].Nick != ms[j].Nick {
					return ms[i].Nick < ms[j].Nick
				}
				return ms[i].ID < ms[j].ID
			})
			self := r.cfg.Peer.ID()
			var b strings.Builder
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NICK\tSTATE\tADDRESS\tCHAT\tID")
			for _, m := range ms {
				n := Sanitize(m.DisplayName)
				if n == "" {
					n = Sanitize(m.Nick)
				}
				if m.ID == self {
					n += " (you)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", dash(n), dash(Sanitize(string(m.State))), dash(Sanitize(m.Addr)),
					dash(Sanitize(m.ChatAddr)), Sanitize(m.ID))
			}
			_ = tw.Flush()
			r.Printf("%s\n%s", plural(len(ms), "member"), strings.TrimRight(b.String(), "\n"))
			return nil
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdHealth() *Command {
	return &Command{
		Name: "health", MaxArgs: 0,
		Summary: "memberlist health score (0 is healthy)",
		Help:    "memberlist's awareness score: it grows when this node misses probes or acks, and makes\nit more patient before declaring others failed.",
		Run: func(_ context.Context, r *REPL, _ *Invocation) error {
			h := r.cfg.Peer.Health()
			verdict := "healthy"
			if h > 0 {
				verdict = "degraded: this node is slow to answer probes"
			}
			r.Printf("health score %d (%s; lower is better)", h, verdict)
			return nil
		},
	}
}

func cmdPing() *Command {
	return &Command{
		Name: "ping", Args: "NICK", MinArgs: 1, MaxArgs: 1,
		Summary:  "round-trip time to a member (nick or peer ID)",
		Complete: completeNick,
		Run: func(ctx context.Context, r *REPL, inv *Invocation) error {
			ctx, cancel := context.WithTimeout(ctx, r.cfg.CommandTimeout)
			defer cancel()
			rtt, err := r.cfg.Peer.Ping(ctx, inv.Args[0])
			if err != nil {
				return fmt.Errorf("ping %s: %w", Sanitize(inv.Args[0]), err)
			}
			r.Printf("pong from %s in %v", Sanitize(inv.Args[0]), rtt.Round(time.Microsecond))
			return nil
		},
	}
}

func cmdKV() *Command {
	return &Command{
		Name:    "kv",
		Summary: "key/values broadcast to every member",
		Help:    "Values travel in memberlist's broadcast queue (cli-chat's broadcastadd/del/list);\nkeep them small.",
		Sub: []*Command{
			{
				Name: "set", Args: "KEY VALUE", MinArgs: 2, MaxArgs: -1,
				Summary: "set KEY to VALUE (the rest of the line)",
				Run: func(_ context.Context, r *REPL, inv *Invocation) error {
					k, v := inv.Args[0], strings.Join(inv.Args[1:], " ")
					if err := r.cfg.Peer.KVSet(k, v); err != nil {
						return restate("kv set "+Sanitize(k), fmt.Sprintf("set %q", k), err)
					}
					r.Printf("%s = %s", Sanitize(k), Sanitize(v))
					return nil
				},
			},
			{
				Name: "del", Aliases: []string{"rm"}, Args: "KEY", MinArgs: 1, MaxArgs: 1,
				Summary: "delete KEY",
				Complete: func(r *REPL, args []string, _ string) []Suggestion {
					if len(args) > 0 {
						return nil
					}
					var out []Suggestion
					for _, k := range sortedKeys(r.cfg.Peer.KVList()) {
						out = append(out, Suggestion{Text: k, Description: "key"})
					}
					return out
				},
				Run: func(_ context.Context, r *REPL, inv *Invocation) error {
					if err := r.cfg.Peer.KVDel(inv.Args[0]); err != nil {
						return restate("kv del "+Sanitize(inv.Args[0]), fmt.Sprintf("set %q", inv.Args[0]), err)
					}
					r.Printf("deleted %s", Sanitize(inv.Args[0]))
					return nil
				},
			},
			{
				Name: "list", Aliases: []string{"ls"}, MaxArgs: 0,
				Summary: "list the key/values",
				Run: func(_ context.Context, r *REPL, _ *Invocation) error {
					kv := r.cfg.Peer.KVList()
					if len(kv) == 0 {
						r.Printf("no keys")
						return nil
					}
					var b strings.Builder
					for _, k := range sortedKeys(kv) {
						fmt.Fprintf(&b, "%s = %s\n", Sanitize(k), Sanitize(kv[k]))
					}
					r.Printf("%s", strings.TrimRight(b.String(), "\n"))
					return nil
				},
			},
		},
	}
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func cmdStats() *Command {
	return &Command{
		Name: "stats", MaxArgs: 0,
		Summary: "counters of the peer (messages, drops, queues)",
		Run: func(_ context.Context, r *REPL, _ *Invocation) error {
			p := r.cfg.Peer
			st := statLines(p.Stats(), len(p.Members()), p.Health())
			rooms := r.roomStats() // per room: received, delivered, held back
			var b strings.Builder
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			for _, s := range st {
				fmt.Fprintf(tw, "%s\t%s\n", s.name, s.value)
			}
			_ = tw.Flush()
			if rooms != "" {
				b.WriteString("\n")
				b.WriteString(rooms)
			}
			r.Printf("%s", strings.TrimRight(b.String(), "\n"))
			return nil
		},
	}
}

func cmdConfig() *Command {
	return &Command{
		Name:    "config",
		Summary: "memberlist configuration as JSON",
		Sub: []*Command{
			{
				Name: "show", MaxArgs: 0,
				Summary: "print the configuration",
				Run: func(_ context.Context, r *REPL, _ *Invocation) error {
					data, err := r.cfg.Peer.MemberlistConfigJSON()
					if err != nil {
						return fmt.Errorf("read memberlist config: %w", err)
					}
					var b bytes.Buffer
					if err := json.Indent(&b, data, "", "  "); err != nil {
						return fmt.Errorf("memberlist config is not valid JSON: %w", err)
					}
					if r.cfg.Peer.AdvertiseAddr() == "" {
						b.WriteString("\n(not started: the settings /ml start will use; bind_port 0 picks a free port then)")
					}
					r.Printf("%s", b.String())
					return nil
				},
			},
			{
				Name: "save", Args: "FILE", MinArgs: 1, MaxArgs: 1,
				Summary:  "write the configuration to FILE",
				Complete: completeFile,
				Run: func(_ context.Context, r *REPL, inv *Invocation) error {
					data, err := r.cfg.Peer.MemberlistConfigJSON()
					if err != nil {
						return fmt.Errorf("read memberlist config: %w", err)
					}
					var b bytes.Buffer
					if err := json.Indent(&b, data, "", "  "); err != nil {
						return fmt.Errorf("memberlist config is not valid JSON: %w", err)
					}
					b.WriteByte('\n')
					path := expandPath(inv.Args[0])
					if err := writeFileAtomic(path, b.Bytes()); err != nil {
						return err
					}
					r.Printf("saved memberlist config to %s", path)
					return nil
				},
			},
			{
				Name: "load", Args: "FILE", MinArgs: 1, MaxArgs: 1,
				Summary:  "replace the configuration with FILE (before /ml start)",
				Complete: completeFile,
				Run: func(_ context.Context, r *REPL, inv *Invocation) error {
					path := expandPath(inv.Args[0])
					data, err := readFileLimit(path, maxConfigBytes)
					if err != nil {
						return err
					}
					if !json.Valid(data) {
						return fmt.Errorf("load %s: not valid JSON", path)
					}
					if err := r.cfg.Peer.LoadMemberlistConfigJSON(data); err != nil {
						return fmt.Errorf("load memberlist config %s: %w", path, err)
					}
					r.Printf("loaded memberlist config from %s", path)
					return nil
				},
			},
		},
	}
}

func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// writeFileAtomic writes through a temporary file and a rename, so a
// crash never leaves half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

func cmdML() *Command {
	return &Command{
		Name: "ml", Manual: true,
		Summary: "memberlist lifecycle, step by step (--manual mode)",
		Help: "The cli-chat flow: /config load FILE (optional), /ml start, /ml join ADDR… (or /ml join\n" +
			"with no address to use the bootstrap service's contacts), /bootstrap join, chat,\n" +
			"/ml leave, /ml shutdown. /ml start creates and starts the node in one step.",
		Sub: []*Command{
			{
				Name: "start", Aliases: []string{"create"}, MaxArgs: 0,
				Summary: "create and start the memberlist node and the chat listener",
				Run: func(ctx context.Context, r *REPL, _ *Invocation) error {
					if err := r.cfg.Lifecycle.Start(ctx); err != nil {
						if r.selfState() == hearsay.StateDead {
							return fmt.Errorf("start memberlist: %w (/ml shutdown is final for this process: /quit and run hearsay again)", err)
						}
						return fmt.Errorf("start memberlist: %w", err)
					}
					r.Printf("memberlist started at %s", dash(r.cfg.Peer.AdvertiseAddr()))
					return nil
				},
			},
			{
				Name: "join", Args: "[ADDR…]", MaxArgs: -1,
				Summary: "join the group through ADDR (host:port), or through the bootstrap contacts",
				Complete: func(r *REPL, _ []string, _ string) []Suggestion {
					var out []Suggestion
					for _, m := range r.cfg.Peer.Members() {
						if m.Addr != "" && m.ID != r.cfg.Peer.ID() {
							out = append(out, Suggestion{Text: m.Addr, Description: Sanitize(m.Nick)})
						}
					}
					return out
				},
				Run: func(ctx context.Context, r *REPL, inv *Invocation) error {
					ctx, cancel := context.WithTimeout(ctx, r.cfg.CommandTimeout)
					defer cancel()
					addrs := inv.Args
					if len(addrs) == 0 {
						var err error
						if addrs, err = r.bootstrapAddrs(ctx); err != nil {
							return err
						}
						if len(addrs) == 0 {
							r.Printf("the bootstrap service has no other contacts; you are the first peer")
							return nil
						}
					}
					n, err := r.cfg.Lifecycle.Join(ctx, addrs)
					if err != nil {
						return prefixOnce("join "+strings.Join(addrs, ", "), err)
					}
					r.Printf("joined the group through %d of %d contacts", n, len(addrs))
					return nil
				},
			},
			{
				Name: "leave", MaxArgs: 0,
				Summary: "leave the group gracefully (others see you left)",
				Run: func(ctx context.Context, r *REPL, _ *Invocation) error {
					ctx, cancel := context.WithTimeout(ctx, r.cfg.CommandTimeout)
					defer cancel()
					if err := r.cfg.Lifecycle.Leave(ctx); err != nil {
						return prefixOnce("leave", err)
					}
					r.Printf("left the group")
					return nil
				},
			},
			{
				Name: "shutdown", MaxArgs: 0,
				Summary: "stop the memberlist node for good (without leaving: others see a failure)",
				Run: func(_ context.Context, r *REPL, _ *Invocation) error {
					if err := r.cfg.Lifecycle.Shutdown(); err != nil {
						return fmt.Errorf("shutdown: %w", err)
					}
					r.Printf("memberlist stopped for good (this process cannot start it again)")
					return nil
				},
			},
		},
	}
}

// selfState returns this node's own state in its member view ("" when
// the peer does not list itself).
func (r *REPL) selfState() hearsay.MemberState {
	self := r.cfg.Peer.ID()
	for _, m := range r.cfg.Peer.Members() {
		if m.ID == self {
			return m.State
		}
	}
	return ""
}

// outOfGroup says why this node has no current view of the group (it left,
// shut down or has not started), or "" when it is in the group.
func (r *REPL) outOfGroup() string {
	switch r.selfState() {
	case hearsay.StateLeft:
		return "you left the group (/ml leave)"
	case hearsay.StateDead:
		return "memberlist is shut down"
	case hearsay.StateNotStarted:
		return "memberlist is not started (/ml start)"
	}
	return ""
}

// bootstrapAddrs returns the contacts of the bootstrap service, without
// this peer.
func (r *REPL) bootstrapAddrs(ctx context.Context) ([]string, error) {
	if r.cfg.Bootstrap == nil {
		return nil, fmt.Errorf("no address given and %w", errNoBootstrap)
	}
	cs, err := r.cfg.Bootstrap.List(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("list bootstrap contacts: %w", err)
	}
	var addrs []string
	for _, c := range cs {
		if c.ID != r.cfg.Peer.ID() && c.Addr != "" {
			addrs = append(addrs, c.Addr)
		}
	}
	return addrs, nil
}
