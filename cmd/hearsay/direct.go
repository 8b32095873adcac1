package main

import (
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/repl"
)

// The chat node is the REPL's direct-message peer as it is (/msg, /query,
// /receipts).
var _ repl.Direct = (*chat.Node)(nil)
