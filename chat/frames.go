package chat

// Every chat frame this node sends is built here, so the wire vocabulary
// (chat.proto's Frame) has one place in the code. The handshake frames
// (Hello, Auth) belong to the transport (chat/transport).

import "github.com/hearsay-chat/hearsay/chat/chatpb"

func envelopeFrame(env *chatpb.Envelope) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: env}}
}

func batchFrame(envs []*chatpb.Envelope) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: envs}}}
}

func pingFrame(nonce uint64) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: nonce}}}
}

func pongFrame(nonce uint64) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Pong{Pong: &chatpb.Pong{Nonce: nonce}}}
}

func byeFrame(nonce uint64) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Bye{Bye: &chatpb.Bye{Nonce: nonce}}}
}

func statusFrame(st *chatpb.Status) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Status{Status: st}}
}

func repairFrame(rp *chatpb.Repair) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: rp}}
}

func roomSetFrame(rs *chatpb.RoomSet) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_RoomSet{RoomSet: rs}}
}
