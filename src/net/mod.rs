//! Secret handshake, box stream and connections (see the module files).
