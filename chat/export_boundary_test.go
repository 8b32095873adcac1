package chat

import "github.com/hearsay-chat/hearsay/chat/transport"

// TLSTransportConfigForTest returns the configuration of the TLS transport
// a node with cfg and identity local listens with, for tests that put
// something (a recording proxy) in front of a real node's listener.
func TLSTransportConfigForTest(cfg Config, local transport.Local) transport.TLSConfig {
	return tlsTransportConfig(&cfg, local)
}
