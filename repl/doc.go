// Package repl is hearsay's command loop: the command table, the
// dispatcher, the completer, history, scripts, the printer (text, colours,
// --json) and the go-prompt adapter that prints incoming messages above
// the line being typed.
//
// # Wiring (cmd/hearsay)
//
// repl imports neither chat nor bootstrap-api: it declares the small
// interfaces it needs (Peer, Lifecycle, Rooms, Faults, Bootstrap) with the
// domain types of package hearsay (Event, Member, RoomInfo, MsgID,
// OrderMode, Stats). The chat node implements Peer, Lifecycle and Rooms as
// it is, and the REPL reads its Events channel directly until it is closed;
// cmd adapts the bootstrap client.
//
//	cfg := repl.DefaultConfig()
//	cfg.Peer = node                     // *chat.Node
//	cfg.Lifecycle = node                // only used with cfg.Manual
//	cfg.Rooms = node                    // /join, /part, /rooms, /history
//	cfg.Bootstrap = bootstrapAdapter{c: client}  // nil: /bootstrap says none is configured
//	cfg.Manual, cfg.JSON, cfg.ScriptFile = manual, jsonOut, script
//	cfg.HistoryFile = filepath.Join(dataDir, "history")
//	cfg.OnSignal = func(os.Signal) { cleanup() } // see Signals below
//	r, err := repl.New(cfg, repl.StdIO())
//	defer r.Close()
//	err = r.Run(ctx) // nil on /quit and end of input
//
// Run chooses the terminal prompt when stdin and stdout are terminals and
// --json is off, and otherwise reads lines from stdin; both go through
// Exec, as do --script (Config.ScriptFile) and /exec. In a script and in
// line mode the first failed command ends Run with an error wrapping
// ErrCommandFailed (the hearsay command exits 1); Config.KeepGoing
// (--keep-going) runs the rest and returns that error at the end. A failed
// command at the terminal prompt only prints its error.
//
// # Signals
//
// go-prompt v0.2.6 catches SIGINT, SIGTERM and SIGQUIT while the prompt
// waits for a key and calls os.Exit itself (status 0, 1 and 0), so
// deferred cleanup in cmd never runs then. The REPL restores the terminal
// and calls Config.OnSignal on go-prompt's goroutine just before that
// exit; the hook must do the host's cleanup (leave the group and the
// bootstrap service, bounded by a timeout) synchronously and be safe to
// run in addition to the normal cleanup. When go-prompt does not act on a
// signal (SIGHUP, or a signal while a command runs) or ctx ends, the REPL
// ends the prompt itself within half a second and Run returns an error
// wrapping ErrInterrupted (or ctx.Err()), so the host cleans up normally.
// In line mode signals are the host's business: Run returns ctx.Err()
// when ctx ends.
//
// # Output
//
// Messages print as "[15:04:05] <alice> hello", events as
// "[15:04:05] * bob joined", command output bare and errors as
// "error: …" (on stderr in line mode). Nicks have a stable colour on
// terminals (Config.Color). Everything from peers is sanitised (Sanitize):
// ANSI sequences, C0/C1 controls, format characters (zero-width spaces and
// joiners, soft hyphen, BOM, bidi controls, the tag block), the line and
// paragraph separators U+2028/2029 and the Hangul fillers are removed, and
// at most four combining marks are kept after a base character;
// continuation lines of a multi-line message are indented so they cannot
// pass for lines from someone else. A nick that looks like a live
// member's, or comes from an origin that is not a live member, is shown
// with its ID suffix ("<alice#3f2a>", chat's display names).
//
// With --json every event is one JSON object per line on stdout, in
// hearsay.Event's JSON form (its MarshalJSON, the schema in README.md):
//
//	{"type":"message","time":"2026-11-21T10:00:00Z","room":"lobby","from":"alice",
//	 "from_id":"…","id":"…/1","text":"hello"}
//
// type is message, join, leave, failed, nick, system, error or history
// (a past message printed by /history, not a new delivery); time is
// RFC 3339; room, from, from_id, id, text and late appear when they apply.
// Command output is a "system" event and command errors are "error"
// events. The user's own messages appear as the peer emits them (or at
// once with Config.EchoOwn).
//
// # Commands
//
// /help [CMD], /quit (/exit), /nick [NAME], /who, /members, /health,
// /ping NICK, /kv set KEY VALUE|del KEY|list, /bootstrap (/bs)
// join|leave|list [N]|refill|reset|config [k=v…], /config show|save
// FILE|load FILE, /exec FILE, /sleep DURATION, /echo TEXT, /log [on
// FILE|off], /stats, and in --manual mode /ml start|join [ADDR…]|leave|
// shutdown (cli-chat's create+start, join, leave, shutdown; /ml join
// without addresses uses the bootstrap contacts). With Config.Rooms:
// /join #ROOM [--order fifo|causal|total|sequencer], /part [#ROOM],
// /switch #ROOM, /rooms, /history [N]; messages from a room other than
// the current one print with their room ("[15:04:05] #dev <bob> hi").
// With Config.Faults: /fault show|partition NICK…|heal|drop|delay|jitter.
// New commands are added
// with REPL.Register. Plain text is a message to the current room; a line
// starting with "//" sends the text after the first slash. In scripts and
// stdin mode a line whose first non-blank character is '#' is a comment.
package repl
