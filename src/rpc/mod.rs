//! muxrpc: packet codec and request / stream multiplexing.
