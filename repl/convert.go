package repl

import "context"

// ConvertEvents adapts a peer's event channel of another type (such as
// chat.Event) to the Event channel Peer.Events returns. It starts one
// goroutine that ends when in is closed or ctx ends, and then closes the
// returned channel. The returned channel holds up to 64 events; when it
// is full the goroutine waits (the peer's own bounded channel then fills
// and the peer drops and counts, as it does for any slow reader).
func ConvertEvents[T any](ctx context.Context, in <-chan T, conv func(T) Event) <-chan Event {
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case v, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- conv(v):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
